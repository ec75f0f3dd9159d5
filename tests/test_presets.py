"""Model presets: `viscoder-7b` ... `offline` resolve wherever a model name is accepted, and
`viscoder models` lists them with their size, what they need and whether they are cached."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from helpers import empty_offline_hub_cache

from viscoder_jupyter.backends import effective_backend_name, get_backend, machine
from viscoder_jupyter.backends.hf_hub import resolve_model
from viscoder_jupyter.backends.presets import PRESETS, resolve_preset
from viscoder_jupyter.core.errors import BackendUnavailable
from viscoder_jupyter.core.settings import VisCoder
from viscoder_jupyter.tools import cli, models

HUB_PRESETS = {
    "viscoder-7b": "TIGER-Lab/VisCoder-7B",
    "viscoder-3b": "TIGER-Lab/VisCoder-3B",
    "viscoder2-7b": "TIGER-Lab/VisCoder2-7B",
    "viscoder2-3b": "TIGER-Lab/VisCoder2-3B",
}
llama_cpp = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed")


@pytest.mark.parametrize("name, repo_id", sorted(HUB_PRESETS.items()))
def test_a_hub_preset_is_its_hub_id_for_the_transformers_backend(name, repo_id):
    settings = VisCoder(backend="transformers", model=name)
    assert effective_backend_name(settings) == "transformers"
    assert get_backend(settings).ref == repo_id  # what the magic, the sidebar and bench build
    assert resolve_model(name.upper()) == (repo_id, False)  # as serve and `viscoder serve` resolve it


def test_no_model_configured_is_auto():
    assert VisCoder().model == "auto"  # the model that fits the machine: test_default_model.py


def test_a_hub_preset_on_llama_cpp_says_what_to_do_instead():
    with pytest.raises(BackendUnavailable) as info:
        resolve_preset("viscoder2-7b", "gguf")
    assert "not a GGUF file" in str(info.value) and "--model viscoder2-7b-gguf" in str(info.value)


def test_the_gguf_preset_is_one_hub_file_on_llama_cpp():
    assert resolve_preset("viscoder2-7b-gguf", "gguf") == "mradermacher/VisCoder2-7B-GGUF:VisCoder2-7B.Q4_K_M.gguf"
    assert effective_backend_name(VisCoder(model="viscoder2-7b-gguf")) == "llamacpp"
    assert PRESETS["viscoder2-7b-gguf"].revision == "main"  # until a tested commit is pinned there
    with pytest.raises(BackendUnavailable) as info:
        resolve_model("viscoder2-7b-gguf")  # transformers cannot run it
    assert "GGUF file for llama.cpp" in str(info.value) and "viscoder2-7b for transformers" in str(info.value)


def test_another_quantization_is_asked_for_explicitly_and_a_wrong_one_is_refused():
    assert resolve_preset("viscoder2-7b-gguf:q8_0", "gguf") == "mradermacher/VisCoder2-7B-GGUF:VisCoder2-7B.Q8_0.gguf"
    with pytest.raises(BackendUnavailable) as info:
        resolve_preset("viscoder2-7b-gguf:Q9_X", "gguf")
    message = str(info.value)
    assert "'Q9_X' is not a llama.cpp quantization" in message and "Q4_K_M (confirmed on the hub)" in message
    assert "unconfirmed" in message and "\n" not in message


def test_other_names_pass_through():
    assert resolve_preset("someone/coder-7b", "transformers") == "someone/coder-7b"
    assert resolve_preset("/models/x.gguf", "gguf") == "/models/x.gguf"


@llama_cpp
def test_offline_is_the_bundled_gguf_on_llama_cpp(offline_gguf):
    settings = VisCoder(model="offline")  # the default backend, as `make demo` runs it
    assert effective_backend_name(settings) == "llamacpp"
    backend = get_backend(settings)
    assert Path(backend.model_path()) == Path(offline_gguf)


def test_offline_for_transformers_is_the_converted_folder(offline_model_dir):
    assert resolve_model("offline") == (str(Path(offline_model_dir).resolve()), True)


# --------------------------------------------------------------------------- viscoder models


def fake_cached(hub: Path, repo_id: str) -> None:
    """What try_to_load_from_cache finds for a downloaded model: a ref, a snapshot with config and weights."""
    commit = "a" * 40
    folder = hub / f"models--{repo_id.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name in ("config.json", "model.safetensors.index.json"):
        (snapshot / name).write_text("{}")


def test_viscoder_models_lists_sizes_needs_what_runs_here_and_what_is_cached(monkeypatch, tmp_path):
    hub = empty_offline_hub_cache(monkeypatch, tmp_path)
    fake_cached(hub, "TIGER-Lab/VisCoder2-3B")
    # What this machine reports (no CUDA GPU, 16 GB, llama.cpp installed): the probe is faked, as
    # the test must not depend on the machine it runs on (test_default_model.py runs the real one).
    laptop = machine.Machine(cuda_gb=None, llama_cpp=True, ram_gb=16.0)
    rows = {row["model"]: row for row in models.table(laptop)}
    assert list(rows) == [
        "viscoder-7b",
        "viscoder-3b",
        "viscoder2-7b",
        "viscoder2-3b",
        "viscoder2-7b-gguf (default here)",
        "offline",
    ]
    assert rows["viscoder-7b"]["size"] == "15.2 GB" and rows["viscoder-7b"]["runs here"].startswith("no CUDA GPU")
    assert rows["viscoder2-7b"]["needs"] == "GPU, ~6.5 GB in 4-bit (estimate)"
    assert rows["viscoder-3b"]["needs"] == "GPU, ~2.9 GB in 4-bit (estimate)"
    gguf = rows["viscoder2-7b-gguf (default here)"]
    assert (
        gguf["size"] == "4.7 GB (estimate)"
        and "~5.6 GB RAM" in gguf["needs"]
        and gguf["runs here"] == "yes (llama.cpp)"
    )
    assert gguf["from"] == "mradermacher/VisCoder2-7B-GGUF:VisCoder2-7B.Q4_K_M.gguf" and gguf["cached"] == "no"
    assert rows["viscoder2-3b"]["cached"] == "yes"
    assert all(rows[name]["cached"] == "no" for name in ("viscoder-7b", "viscoder-3b", "viscoder2-7b"))
    assert rows["offline"]["size"] == "0.49 GB (PyPI)" and rows["offline"]["needs"].startswith("CPU")
    small = {r["model"]: r for r in models.table(machine.Machine(cuda_gb=None, llama_cpp=True, ram_gb=4.0))}
    assert small["viscoder2-7b-gguf"]["runs here"] == "no: 4 GB RAM" and "offline (default here)" in small
    gpu = {r["model"]: r for r in models.table(machine.Machine(cuda_gb=24.0, llama_cpp=False, ram_gb=64.0))}
    assert gpu["viscoder-7b (default here)"]["runs here"] == "yes (CUDA, 4-bit)"
    assert gpu["viscoder2-7b-gguf"]["runs here"] == "after: pip install 'viscoder-jupyter[cpu]'"


def test_viscoder_models_says_what_this_machine_gets_with_no_model_configured(monkeypatch, tmp_path, capsys):
    empty_offline_hub_cache(monkeypatch, tmp_path)
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    chosen = machine.choose(machine.probe())
    assert f"This machine: {machine.probe().describe()}." in out
    assert f"With no model configured (model = 'auto'): {chosen.model}, as {chosen.reason}." in out
    assert f"{chosen.model} (default here)" in out


def test_the_offline_row_says_how_to_get_it_when_its_parts_are_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("VISCODER_CACHE", str(tmp_path / "empty-cache"))

    def missing():
        raise models.offline_model.OfflineModelError("missing")

    monkeypatch.setattr(models.offline_model, "find_parts", missing)
    row = next(r for r in models.table() if r["model"] == "offline")
    assert row["cached"] == f"no ({models.offline_model.PIP_INSTALL})"
