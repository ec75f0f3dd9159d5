"""The core install as a user gets it: the wheel, in a fresh venv, without the local engines
(no torch, transformers, accelerate, bitsandbytes, llama-cpp-python). There `%load_ext` works and
imports none of them, JupyterLab lists the sidebar extension enabled, a `%%viscoder` request
through the `openai` backend draws a plot against a real server (llama-cpp-python's
OpenAI-compatible server on the offline GGUF, run from this checkout's venv), and choosing a
local engine gives the one message that says which extra to install.

It builds a wheel and a venv (a minute or two on 2 cores): `make core-install-check` runs it
(part of `make test`, after the labextension the wheel ships is built); a plain pytest run skips
it. Install size and time, core against full: benchmarks/install_size.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
LOCAL_ENGINES = ("torch", "transformers", "accelerate", "bitsandbytes", "llama_cpp")

pytestmark = pytest.mark.skipif(
    os.environ.get("VISCODER_CORE_INSTALL_CHECK") != "1",
    reason="builds a wheel and a venv: run by `make core-install-check` (part of `make test`)",
)

# Runs inside the core venv: load the extension the way a notebook does, then report as JSON.
PRELUDE = """
import importlib.util, json, sys
import pandas as pd
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

ENGINES = {engines!r}
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "viscoder_jupyter")
report = {{
    "imported_at_load": sorted(m for m in ENGINES if m in sys.modules),
    "installed": sorted(m for m in ENGINES if importlib.util.find_spec(m) is not None),
    "location": __import__("viscoder_jupyter").__file__,
}}
ip.user_ns["sales"] = pd.DataFrame({{"region": ["North", "South", "East", "West"], "revenue": [405, 295, 340, 212]}})
"""


def run(argv: list, timeout: float = 900, **kwargs) -> str:
    """Run a command; its combined output, or a failure that shows it."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(map(str, argv))} failed ({done.returncode}):\n{output[-4000:]}"
    return output


def clean_env(**extra: str) -> dict:
    """This process's environment without what would point Python or Jupyter at this checkout."""
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "JUPYTER_PATH", "JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def run_in_venv(venv: Path, body: str, **format_args) -> dict:
    script = PRELUDE.format(engines=LOCAL_ENGINES) + body.format(**format_args) + "\nprint(json.dumps(report))\n"
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script],
        capture_output=True,
        text=True,
        timeout=900,
        env=clean_env(),
        cwd=venv.parent,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # the report is the last line; the live view prints above


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory) -> Path:
    """The wheel (with the prebuilt extension, no Node.js) installed alone into a fresh venv."""
    if not (ROOT / "viscoder_jupyter" / "labextension" / "package.json").is_file():
        pytest.fail("The wheel ships the built JupyterLab extension: run `make labextension` first.")
    top = tmp_path_factory.mktemp("core-install")
    # The extension is already built: the build hook only checks it is there (no npm).
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(top / "dist"), str(ROOT)],
        env=clean_env(HATCH_JUPYTER_BUILDER_SKIP_NPM="1"),
    )
    (wheel,) = (top / "dist").glob("viscoder_jupyter-*.whl")
    venv = top / "venv"
    run([sys.executable, "-m", "venv", str(venv)], env=clean_env())
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], env=clean_env())
    return venv


def test_load_ext_works_without_the_local_engines_and_each_says_what_to_install(core_venv, offline_gguf):
    report = run_in_venv(
        core_venv,
        """
messages = {{}}
for engine, line in (("transformers", "sales"), ("llamacpp", "sales --backend llamacpp --model {gguf}")):
    try:
        ip.run_cell_magic("viscoder", line, "bar chart of revenue by region")
    except UsageError as exc:
        messages[engine] = str(exc)
report["messages"] = messages
report["imported_after"] = sorted(m for m in ENGINES if m in sys.modules)
""",
        gguf=str(offline_gguf),
    )
    assert report["installed"] == [], "the core install must not bring a local engine"
    assert report["location"].startswith(str(core_venv)), report["location"]  # the wheel, not this checkout
    assert report["imported_at_load"] == [] and report["imported_after"] == []
    transformers, llamacpp = report["messages"]["transformers"], report["messages"]["llamacpp"]
    assert "pip install 'viscoder-jupyter[local]'" in transformers and "torch" in transformers
    assert "pip install 'viscoder-jupyter[cpu]'" in llamacpp
    assert not any("Traceback" in m or "\n" in m.strip() for m in (transformers, llamacpp))  # one line each


def test_jupyterlab_lists_the_sidebar_extension_enabled(core_venv, tmp_path):
    output = run(
        [str(core_venv / "bin" / "jupyter"), "labextension", "list"],
        env=clean_env(JUPYTER_DATA_DIR=str(tmp_path / "data"), JUPYTER_CONFIG_DIR=str(tmp_path / "config")),
        timeout=120,
    )
    lines = re.sub(r"\x1b\[[0-9;]*m", "", output).splitlines()  # without its colours
    found = [i for i, line in enumerate(lines) if line.split()[:1] == ["viscoder-jupyter"]]
    assert len(found) == 1, output
    line = lines[found[0]]
    assert "enabled" in line.split() and "OK" in line.split(), output
    folder = next(lines[i].strip() for i in range(found[0], -1, -1) if lines[i].strip().startswith("/"))
    assert folder.startswith(str(core_venv)), output  # the copy the wheel installed


@pytest.mark.timeout(1200)
def test_a_request_through_the_openai_backend_draws_a_plot(core_venv, offline_gguf, tmp_path):
    from test_llamacpp_server import ALIAS, SERVER_MODULES, LlamaServer

    if any(importlib.util.find_spec(m) is None for m in SERVER_MODULES):
        pytest.fail("llama-cpp-python's server is not installed here: pip install 'viscoder-jupyter[cpu,test]'")
    server = LlamaServer(offline_gguf, tmp_path / "server.log")
    server.start()
    try:
        report = run_in_venv(
            core_venv,
            """
ip.run_line_magic("config", "VisCoder.backend = 'openai'")
ip.run_line_magic("config", "VisCoder.base_url = {url!r}")
ip.run_line_magic("config", "VisCoder.model = {alias!r}")
ip.run_cell_magic("viscoder", "sales", "bar chart of the revenue of each region")
result = ip.magics_manager.registry["VisCoderMagics"].last_result
report["ok"] = result.ok
report["errors"] = [a.error.one_line() for a in result.attempts if a.error]
report["png"] = bool(result.images) and result.images[0][:4] == b"\\x89PNG"
report["inserted"] = getattr(ip, "rl_next_input", None)
report["imported_after"] = sorted(m for m in ENGINES if m in sys.modules)
""",
            url=server.url,
            alias=ALIAS,
        )
    finally:
        server.stop()
    assert report["ok"] and report["png"], report["errors"]
    assert report["inserted"].startswith("# %%viscoder: bar chart of the revenue of each region\n")
    assert report["imported_after"] == []
