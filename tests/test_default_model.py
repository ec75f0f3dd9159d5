"""With no model configured (`model = "auto"`), the model that fits the machine, and why.

Each branch is driven by what the machine reports. This machine has no GPU: the CUDA branches
fake only the hardware probe (`machine.cuda_memory_gb`, and `ram_gb` for the small-RAM branch);
the branch without llama.cpp hides the installed package (``sys.modules["llama_cpp"] = None``,
which is how Python reads a missing module). The branch this machine takes as it is (no CUDA,
llama.cpp installed) runs unfaked here and end to end in test_gguf_presets.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from viscoder_jupyter import backends
from viscoder_jupyter.backends import effective_backend_name, get_backend, machine
from viscoder_jupyter.backends.hf_hub import resolve_model
from viscoder_jupyter.backends.presets import resolve_preset
from viscoder_jupyter.core.settings import VisCoder


@pytest.fixture
def reported(monkeypatch):
    """report(cuda_gb=..., ram_gb=..., llama_cpp=...): the machine as the probe will read it."""
    monkeypatch.delenv("VISCODER_MODEL", raising=False)
    monkeypatch.delenv("VISCODER_BACKEND", raising=False)

    def report(*, cuda_gb=None, ram_gb=None, llama_cpp=True):
        monkeypatch.setattr(machine, "cuda_memory_gb", lambda: cuda_gb)  # the hardware: faked
        if ram_gb is not None:
            monkeypatch.setattr(machine, "ram_gb", lambda: ram_gb)
        if not llama_cpp:
            monkeypatch.setitem(sys.modules, "llama_cpp", None)  # not installed, as Python sees it
        machine.probe.cache_clear()
        machine.machine_choice.cache_clear()
        monkeypatch.setattr(machine, "_announced", set())
        monkeypatch.setattr(backends, "_instances", {})  # `auto` backends built for another machine
        return machine.probe()

    yield report
    machine.probe.cache_clear()
    machine.machine_choice.cache_clear()


def test_a_cuda_gpu_with_enough_memory_gets_viscoder_7b_in_4bit(reported):
    seen = reported(cuda_gb=24.0)
    assert seen.cuda_gb == 24.0
    settings = VisCoder()
    assert settings.model == "auto" and effective_backend_name(settings) == "transformers"
    assert get_backend(settings).ref == "TIGER-Lab/VisCoder-7B"  # today's default, as before
    note = machine.take_choice_notice(settings.model)
    assert note.startswith("No model configured, so viscoder-7b: a CUDA GPU with 24 GB here: VisCoder-7B in 4-bit")
    assert machine.take_choice_notice(settings.model) is None  # said once


def test_a_small_gpu_and_llama_cpp_get_the_gguf_preset(reported):
    reported(cuda_gb=4.0, ram_gb=16.0)
    settings = VisCoder()
    assert effective_backend_name(settings) == "llamacpp"
    backend = get_backend(settings)
    assert (backend.ref, backend.filename) == ("mradermacher/VisCoder2-7B-GGUF", "VisCoder2-7B.Q4_K_M.gguf")
    note = machine.take_choice_notice("auto")
    assert "the CUDA GPU here has 4 GB, VisCoder-7B needs ~6.5 GB in 4-bit" in note
    assert "a 4.7 GB download the first time" in note and "~5.6 GB of RAM" in note


def test_this_machine_as_it_is(reported):
    """Nothing faked: no CUDA here, llama.cpp installed (make test installs it), RAM as it is."""
    machine.probe.cache_clear()
    machine.machine_choice.cache_clear()
    seen = machine.probe()
    if seen.cuda_gb is not None or not seen.llama_cpp or (seen.ram_gb or 0) < 5.6:
        pytest.skip(f"this test describes a machine without CUDA, with llama.cpp and 6+ GB: {seen.describe()}")
    assert machine.machine_choice().model == "viscoder2-7b-gguf"
    assert effective_backend_name(VisCoder()) == "llamacpp"


def test_too_little_ram_for_the_7b_gguf_gets_the_offline_model_on_llama_cpp(reported, offline_gguf):
    reported(ram_gb=4.0)
    assert effective_backend_name(VisCoder()) == "llamacpp"
    assert Path(get_backend(VisCoder()).model_path()) == Path(offline_gguf)
    assert "4 GB of RAM, less than the ~5.6 GB VisCoder2-7B's GGUF needs" in machine.take_choice_notice("auto")


def test_no_cuda_and_no_llama_cpp_get_the_offline_model_and_what_to_install(reported, offline_model_dir):
    reported(llama_cpp=False)
    settings = VisCoder()
    assert effective_backend_name(settings) == "transformers"
    assert resolve_model(settings.model) == (str(Path(offline_model_dir).resolve()), True)
    note = machine.take_choice_notice(settings.model)
    assert "no CUDA GPU here and llama.cpp is not installed: the offline 0.5B model" in note
    assert "For VisCoder on this machine: pip install 'viscoder-jupyter[cpu]'" in note


def test_a_mac_on_apple_silicon_is_told_the_metal_build():
    """The Metal build cannot be tested on these Linux machines: only the advice is."""
    mac = machine.Machine(cuda_gb=None, llama_cpp=False, ram_gb=16.0, apple_silicon=True)
    assert machine.choose(mac).reason.endswith("CMAKE_ARGS='-DGGML_METAL=on' pip install llama-cpp-python")
    with_llama = machine.Machine(cuda_gb=None, llama_cpp=True, ram_gb=16.0, apple_silicon=True)
    assert machine.choose(with_llama).model == "viscoder2-7b-gguf"


def test_a_configured_model_is_never_second_guessed(reported, monkeypatch):
    reported(cuda_gb=24.0)
    assert machine.take_choice_notice("offline") is None
    monkeypatch.setenv("VISCODER_MODEL", "viscoder2-7b-gguf")
    assert effective_backend_name(VisCoder()) == "llamacpp"  # not the GPU's choice
    assert resolve_preset("viscoder-3b", "transformers") == "TIGER-Lab/VisCoder-3B"


def test_without_a_gpu_driver_torch_is_not_even_imported():
    """A laptop without an NVIDIA/ROCm driver learns it has no CUDA without importing torch
    (seconds). This machine has no driver: nothing faked, in a fresh process."""
    if machine._gpu_driver_present():
        pytest.skip("this machine has a GPU driver")
    code = (
        "import sys\nfrom viscoder_jupyter.backends import machine\n"
        "print(machine.probe().cuda_gb, 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["None", "False"], done.stderr
