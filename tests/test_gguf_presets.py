"""The GGUF preset `viscoder2-7b-gguf`: one file from the hub, downloaded with progress, checked
against the hub's sha256, kept in the hub cache and run on llama.cpp; a damaged download is
refused and nothing of it stays.

The hub cannot be reached here: `fake_hub.FakeHub` on 127.0.0.1 stands in for it, serving the
offline GGUF (Qwen2.5-Coder-0.5B-Instruct, Q4_K_M, 491 MB) under the name of the VisCoder2 GGUF
repository and file, with the headers the hub sends for a git-lfs file (its sha256 and size).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from pathlib import Path

import pytest
from fake_hub import FakeHub
from jupyter_client.manager import start_new_kernel
from test_download_progress import fake_hub_env, hub_cache_dir  # noqa: F401 - a fixture

from viscoder_jupyter.backends import machine
from viscoder_jupyter.backends.presets import PRESETS
from viscoder_jupyter.core.errors import BackendUnavailable
from viscoder_jupyter.core.events import DownloadProgress

PRESET = PRESETS["viscoder2-7b-gguf"]
REPO, FILE = PRESET.repo_id, PRESET.gguf_file
llama_cpp = pytest.mark.skipif(machine.probe().llama_cpp is False, reason="llama-cpp-python not installed")


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def leftovers(cache: str) -> list[str]:
    """The repository's files in the hub cache (blobs, snapshot links, partial downloads), bar the
    ref huggingface_hub writes first (its .locks and CACHEDIR.TAG are empty bookkeeping)."""
    repo = Path(cache) / f"models--{REPO.replace('/', '--')}"
    return sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if not p.is_dir() and "refs" not in p.parts)


# --------------------------------------------------------------------------- in process


@llama_cpp
@pytest.mark.timeout(300)
def test_the_preset_downloads_with_progress_is_checked_then_loads_from_the_cache_offline(offline_gguf, fake_hub_env):  # noqa: F811
    from viscoder_jupyter.backends.downloads import watching
    from viscoder_jupyter.backends.llamacpp import LlamaCppBackend

    size = os.path.getsize(offline_gguf)
    with FakeHub({REPO: {FILE: Path(offline_gguf)}}, rate=150e6) as hub:
        fake_hub_env(hub.url)
        backend = LlamaCppBackend("viscoder2-7b-gguf", max_new_tokens=8)
        events: list[DownloadProgress] = []
        asyncio.run(watching(backend.async_prepare(), events.append))
    assert ("HEAD", f"/{REPO}/resolve/main/{FILE}") in hub.requests  # the preset's revision
    assert events[0].what == f"{REPO}:{FILE}" and events[-1].done and events[-1].bytes_done == size
    assert len(events) >= 3 and [e.bytes_done for e in events] == sorted(e.bytes_done for e in events)
    path = backend.model_path()
    assert Path(path).is_relative_to(hub_cache_dir()) and sha256(path) == sha256(offline_gguf)
    # The hub is gone: a new backend (as in a new kernel) takes the file from the cache.
    again = LlamaCppBackend("VisCoder2-7B-GGUF", max_new_tokens=8)  # case aside
    assert again.model_path() == path and backend.load().path == path


@pytest.mark.timeout(300)
@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_download_is_refused_and_nothing_half_written_stays(offline_gguf, fake_hub_env, damage):  # noqa: F811
    from viscoder_jupyter.backends.gguf_files import fetch_hub_gguf

    with FakeHub({REPO: {FILE: Path(offline_gguf)}}, damage={FILE: damage}) as hub:
        fake_hub_env(hub.url)
        with pytest.raises(BackendUnavailable) as info:
            fetch_hub_gguf(REPO, FILE, gpu=False, allow_cpu_download=False)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    if damage == "flip":  # the same size, one byte changed: only the sha256 tells
        assert message.startswith(f"The download of {REPO}:{FILE} is damaged (its sha256 is ")
        assert "so it was deleted and not loaded. Run the request again" in message
    else:  # the hub hangs up halfway, every time (huggingface_hub retries, then gives up)
        assert message.startswith(f"Could not download {REPO}:{FILE} from the Hugging Face hub: ")
        assert "Nothing of it was kept; run the request again" in message
    assert leftovers(hub_cache_dir()) == []  # no blob, no snapshot link, no .incomplete


# --------------------------------------------------------------------------- a real kernel


def run_cell(kc, code: str, timeout: float = 600) -> tuple[dict, list[dict]]:
    seen: list[dict] = []
    reply = kc.execute_interactive(code, timeout=timeout, output_hook=seen.append)
    return reply["content"], seen


def texts(messages: list[dict]) -> list[str]:
    return [
        m["content"]["data"]["text/plain"]
        for m in messages
        if m["msg_type"] in ("display_data", "update_display_data") and "text/plain" in m["content"].get("data", {})
    ] + [m["content"]["text"] for m in messages if m["msg_type"] == "stream"]


def pngs(messages: list[dict]) -> list[bytes]:
    return [
        base64.b64decode(m["content"]["data"]["image/png"])
        for m in messages
        if m["msg_type"] == "display_data" and "image/png" in m["content"].get("data", {})
    ]


SETUP = (
    "%load_ext viscoder_jupyter\n%config VisCoder.retries = 1\n"
    "import pandas as pd\nsales = pd.DataFrame({'region': ['N', 'S', 'W'], 'revenue': [1.0, 2.0, 3.0]})\n"
)
REQUEST = "bar chart of the revenue of each region in sales\n"


def kernel_env(hub_url: str, cache: Path) -> dict:
    env = dict(os.environ, HF_ENDPOINT=hub_url, HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="0")
    env.pop("VISCODER_MODEL", None)  # no model configured: `auto`
    env.pop("VISCODER_BACKEND", None)
    return env


@llama_cpp
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_magic_downloads_the_preset_plots_and_a_new_kernel_uses_the_cache_without_the_hub(offline_gguf, tmp_path):
    cache = tmp_path / "hf-hub"
    with FakeHub({REPO: {FILE: Path(offline_gguf)}}, rate=100e6) as hub:
        km, kc = start_new_kernel(kernel_name="python3", env=kernel_env(hub.url, cache))
        try:
            assert run_cell(kc, SETUP)[0]["status"] == "ok"
            status, seen = run_cell(kc, "%%viscoder --model viscoder2-7b-gguf\n" + REQUEST)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    assert status["status"] == "ok", status
    shown = "\n".join(texts(seen))
    assert f"downloading {REPO}:{FILE}: " in shown and "(100%), done" in shown  # the live view's progress
    assert "No model configured" not in shown  # a model was named: nothing to explain
    assert pngs(seen) and pngs(seen)[0].startswith(b"\x89PNG")  # the plot, through llama.cpp
    (blob,) = [p for p in cache.rglob("*") if p.is_file() and p.parent.name == "blobs"]
    assert blob.name == sha256(offline_gguf)  # kept in the hub cache under its checked sha256

    # The hub is stopped. A new kernel with no model configured: `auto` chose the preset on this
    # machine (no CUDA GPU, llama.cpp installed: what it reports, nothing faked), says so in the
    # live view before anything else, and runs it from the cache.
    if machine.machine_choice().model != PRESET.name:
        pytest.skip(f"this machine's default is {machine.machine_choice().model}: {machine.machine_choice().reason}")
    km, kc = start_new_kernel(kernel_name="python3", env=kernel_env(hub.url, cache))
    try:
        assert run_cell(kc, SETUP)[0]["status"] == "ok"
        status, seen = run_cell(kc, "%%viscoder\n" + REQUEST)
        again, seen_again = run_cell(kc, "%%viscoder\n" + REQUEST)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert status["status"] == "ok" and again["status"] == "ok", (status, again)
    shown = "\n".join(texts(seen))
    assert "note: No model configured, so viscoder2-7b-gguf: no CUDA GPU here, llama.cpp installed" in shown
    assert "a 4.7 GB download the first time" in shown and "downloading" not in shown
    assert pngs(seen) and pngs(seen_again)
    assert "No model configured" not in "\n".join(texts(seen_again))  # said once
