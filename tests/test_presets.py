"""Model presets: `viscoder-7b` ... `offline` resolve wherever a model name is accepted, and
`viscoder models` lists them with their size, what they need and whether they are cached."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from helpers import empty_offline_hub_cache

from viscoder_jupyter.backends import effective_backend_name, get_backend
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


def test_the_default_stays_viscoder_7b():
    assert VisCoder().model == HUB_PRESETS["viscoder-7b"] == PRESETS["viscoder-7b"].repo_id


def test_a_hub_preset_on_llama_cpp_says_what_to_do_instead():
    with pytest.raises(BackendUnavailable) as info:
        resolve_preset("viscoder2-7b", "gguf")
    assert "not a GGUF file" in str(info.value) and "--model offline" in str(info.value)


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


def test_viscoder_models_lists_sizes_needs_and_what_is_cached(monkeypatch, tmp_path, capsys):
    hub = empty_offline_hub_cache(monkeypatch, tmp_path)
    fake_cached(hub, "TIGER-Lab/VisCoder2-3B")
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[1:6]}
    assert list(rows) == ["viscoder-7b", "viscoder-3b", "viscoder2-7b", "viscoder2-3b", "offline"]
    assert "(default)" in rows["viscoder-7b"] and "15.2 GB" in rows["viscoder-7b"]
    assert "GPU, ~6.5 GB in 4-bit" in rows["viscoder2-7b"] and "GPU, ~2.9 GB in 4-bit" in rows["viscoder-3b"]
    assert rows["viscoder2-3b"].split()[-1] == "yes"
    assert all(rows[name].split()[-1] == "no" for name in ("viscoder-7b", "viscoder-3b", "viscoder2-7b"))
    assert "0.49 GB (PyPI)" in rows["offline"] and "CPU" in rows["offline"]


def test_the_offline_row_says_how_to_get_it_when_its_parts_are_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("VISCODER_CACHE", str(tmp_path / "empty-cache"))

    def missing():
        raise models.offline_model.OfflineModelError("missing")

    monkeypatch.setattr(models.offline_model, "find_parts", missing)
    row = next(r for r in models.table() if r["model"] == "offline")
    assert row["cached"] == f"no ({models.offline_model.PIP_INSTALL})"
