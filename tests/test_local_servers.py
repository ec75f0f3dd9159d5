"""`--backend ollama` and `--backend lmstudio`: the openai backend at the app's default address,
asking for the model by the name the app knows it.

Neither app runs here: llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`)
stands in for them on their default ports (11434, 1234), serving the offline GGUF under the name
the app would give VisCoder2-7B's GGUF (it speaks the same API). The magic runs in a bare IPython
shell with a real child kernel.
"""

from __future__ import annotations

import socket

import pytest
from helpers import sales_frame
from test_llamacpp_server import LlamaServer, pytestmark  # noqa: F401 - skipped without the server's modules

from viscoder_jupyter.backends import get_backend
from viscoder_jupyter.backends.local_servers import LMStudioBackend, OllamaBackend, lmstudio_model, ollama_model
from viscoder_jupyter.core.settings import VisCoder

APPS = {
    # backend: (default port, the model name it asks for with no model configured)
    "ollama": (11434, "hf.co/mradermacher/VisCoder2-7B-GGUF:Q4_K_M"),
    "lmstudio": (1234, "viscoder2-7b"),
}


def test_the_shortcuts_are_the_openai_backend_at_the_apps_addresses(monkeypatch):
    monkeypatch.delenv("VISCODER_BASE_URL", raising=False)
    monkeypatch.delenv("VISCODER_MODEL", raising=False)
    ollama = get_backend(VisCoder(backend="ollama"))
    assert isinstance(ollama, OllamaBackend) and ollama.base_url == "http://127.0.0.1:11434/v1"
    assert ollama.model == APPS["ollama"][1]
    studio = get_backend(VisCoder(backend="lmstudio"))
    assert isinstance(studio, LMStudioBackend) and studio.base_url == "http://127.0.0.1:1234/v1"
    assert studio.model == APPS["lmstudio"][1]
    # A preset becomes the app's name for it; any other name, and a URL given, stay as they are.
    assert ollama_model("viscoder2-7b-gguf:q8_0") == "hf.co/mradermacher/VisCoder2-7B-GGUF:Q8_0"
    assert ollama_model("qwen2.5-coder:7b") == "qwen2.5-coder:7b" and lmstudio_model("my-model") == "my-model"
    other = get_backend(VisCoder(backend="ollama", base_url="http://10.0.0.5:11434", model="qwen2.5-coder:7b"))
    assert (other.base_url, other.model) == ("http://10.0.0.5:11434/v1", "qwen2.5-coder:7b")


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.timeout(900)
@pytest.mark.parametrize("app", sorted(APPS))
def test_the_magic_plots_through_the_app_on_its_default_port(app, offline_gguf, tmp_path, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    port, name = APPS[app]
    if not port_free(port):
        pytest.skip(f"port {port} is taken here (is {app} running?): the stand-in server needs it")
    monkeypatch.delenv("VISCODER_BASE_URL", raising=False)
    monkeypatch.delenv("VISCODER_MODEL", raising=False)
    server = LlamaServer(offline_gguf, tmp_path / "server.log", alias=name, port=port)
    server.start()
    try:
        ip = InteractiveShell(config=Config())
        ip.extension_manager.load_extension("viscoder_jupyter")
        ip.user_ns["sales"] = sales_frame()
        ip.run_cell_magic("viscoder", f"--backend {app} --retries 1", "bar chart of the revenue of each region")
        result = ip.magics_manager.registry["VisCoderMagics"].last_result
    finally:
        server.stop()
    assert result.ok and result.images, [a.error for a in result.attempts]
    assert "sales" in result.code
