"""What this machine can run, and the model chosen when none is configured (``model = "auto"``).

The probe reads what the machine reports: a CUDA GPU and its memory (through torch, imported
only where an NVIDIA or ROCm driver is present, so a laptop without one pays nothing), whether
llama.cpp (llama-cpp-python) is installed, the RAM, and whether this is a Mac on Apple Silicon.
`choose` turns that into one of three models, with the reason in words:

- a CUDA GPU with the memory VisCoder-7B needs in 4-bit -> ``viscoder-7b`` (transformers);
- no such GPU, llama.cpp installed and the RAM for it -> ``viscoder2-7b-gguf`` (llama.cpp);
- otherwise -> ``offline`` (the 0.5B model, not VisCoder), saying what to install.

Imports neither torch nor llama_cpp at module level.
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from . import installed

#: llama-cpp-python with Metal on a Mac (Apple Silicon); it cannot be tested on these Linux machines.
METAL_INSTALL = "CMAKE_ARGS='-DGGML_METAL=on' pip install llama-cpp-python"
CPU_INSTALL = "pip install 'viscoder-jupyter[cpu]'"


@dataclass(frozen=True)
class Machine:
    """What the machine reports. `cuda_gb`: memory of its largest CUDA GPU (None: no usable GPU)."""

    cuda_gb: float | None
    llama_cpp: bool
    ram_gb: float | None
    apple_silicon: bool = False

    def describe(self) -> str:
        gpu = f"CUDA GPU {self.cuda_gb:.0f} GB" if self.cuda_gb else "no CUDA GPU"
        ram = f"{self.ram_gb:.0f} GB RAM" if self.ram_gb else "RAM unknown"
        engine = "llama.cpp installed" if self.llama_cpp else "llama.cpp not installed"
        return f"{gpu}, {ram}, {engine}" + (", Apple Silicon" if self.apple_silicon else "")


@dataclass(frozen=True)
class Choice:
    """The model `auto` stands for on this machine, and why (one line a user reads)."""

    model: str
    reason: str


def _gpu_driver_present() -> bool:
    """An NVIDIA (or ROCm) driver is there: only then is torch imported to ask about CUDA."""
    markers = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/kfd", "/usr/lib/wsl/lib/libcuda.so")
    return any(Path(m).exists() for m in markers) or shutil.which("nvidia-smi") is not None


def cuda_memory_gb() -> float | None:
    """Total memory of the largest CUDA device torch sees; None without torch, driver or GPU."""
    if "torch" not in sys.modules and (not installed("torch") or not _gpu_driver_present()):
        return None
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        return max(torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count())) / 1e9
    except Exception:  # a broken driver reads as no GPU
        return None


def ram_gb() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (AttributeError, ValueError, OSError):
        return None


def is_apple_silicon() -> bool:
    return sys.platform == "darwin" and platform.machine() == "arm64"


@functools.cache
def probe() -> Machine:
    """The machine as it reports itself (once per process: none of it changes while it runs)."""
    return Machine(cuda_memory_gb(), installed("llama_cpp"), ram_gb(), is_apple_silicon())


def choose(machine: Machine) -> Choice:
    """The model for this machine when none is configured, with the reason."""
    from .presets import GGUF_DEFAULT, OFFLINE, PRESETS

    gpu, gguf = PRESETS["viscoder-7b"], PRESETS[GGUF_DEFAULT]
    if machine.cuda_gb is not None and machine.cuda_gb >= gpu.gpu_4bit_gb:
        return Choice(
            gpu.name,
            f"a CUDA GPU with {machine.cuda_gb:.0f} GB here: VisCoder-7B in 4-bit ({gpu.name}, "
            f"~{gpu.gpu_4bit_gb:g} GB of GPU memory, a {gpu.download_gb:g} GB download the first time)",
        )
    no_gpu = (
        f"the CUDA GPU here has {machine.cuda_gb:.0f} GB, VisCoder-7B needs ~{gpu.gpu_4bit_gb:g} GB in 4-bit"
        if machine.cuda_gb is not None
        else "no CUDA GPU here"
    )
    if machine.llama_cpp:
        if machine.ram_gb is not None and machine.ram_gb < gguf.ram_gb:
            return Choice(
                OFFLINE,
                f"{no_gpu}, and {machine.ram_gb:.0f} GB of RAM, less than the ~{gguf.ram_gb:g} GB "
                f"VisCoder2-7B's GGUF needs: the offline 0.5B model (Qwen2.5-Coder-0.5B, not VisCoder) "
                f"on llama.cpp",
            )
        return Choice(
            gguf.name,
            f"{no_gpu}, llama.cpp installed: VisCoder2-7B on llama.cpp ({gguf.name}: {gguf.gguf_file} "
            f"from {gguf.repo_id}, a {gguf.download_gb:g} GB download the first time, kept in the "
            f"Hugging Face cache; ~{gguf.ram_gb:g} GB of RAM)",
        )
    install = METAL_INSTALL if machine.apple_silicon else CPU_INSTALL
    return Choice(
        OFFLINE,
        f"{no_gpu} and llama.cpp is not installed: the offline 0.5B model (Qwen2.5-Coder-0.5B, "
        f"not VisCoder). For VisCoder on this machine: {install}",
    )


@functools.cache
def machine_choice() -> Choice:
    return choose(probe())


_announced: set[str] = set()


def take_choice_notice(model: str) -> str | None:
    """The line saying which model `auto` chose and why, the first time a request uses it in
    this process (before a download starts); None afterwards, or for a configured model."""
    if str(model or "").strip().lower() != "auto":
        return None
    choice = machine_choice()
    if choice.model in _announced:
        return None
    _announced.add(choice.model)
    return (
        f"No model configured, so {choice.model}: {choice.reason}. Choose another with --model NAME "
        f"(`viscoder models` lists them)."
    )
