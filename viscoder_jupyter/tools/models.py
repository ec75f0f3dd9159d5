"""`viscoder models`: the model presets, what each needs, whether this machine can run it, whether
it is here already, and the model chosen when none is configured (and why).

Reads only the local Hugging Face cache, the offline model's cache and what the machine
reports (backends/machine.py): no network.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..backends import hf_hub
from ..backends.machine import CPU_INSTALL, METAL_INSTALL, Machine, choose, probe
from ..backends.presets import AUTO, OFFLINE, PRESETS, Preset
from . import offline_model


def needs(preset: Preset) -> str:
    if preset.is_gguf:
        return f"CPU or Mac, ~{preset.ram_gb:g} GB RAM (llama.cpp)"
    if preset.gpu_4bit_gb is None:
        return "CPU, ~1 GB RAM"
    return f"GPU, ~{preset.gpu_4bit_gb:g} GB in 4-bit (estimate)"


def size(preset: Preset) -> str:
    if preset.repo_id is None:
        return f"{offline_model.EXPECTED_SIZE / 1e9:.2f} GB (PyPI)"
    return f"{preset.download_gb:g} GB" + (" (estimate)" if preset.is_gguf else "")


def runs_here(preset: Preset, machine: Machine) -> str:
    """Whether this machine runs the preset at a usable speed, and if not what is missing."""
    install = METAL_INSTALL if machine.apple_silicon else CPU_INSTALL
    if preset.is_gguf:
        if not machine.llama_cpp:
            return f"after: {install}"
        if machine.ram_gb is not None and machine.ram_gb < preset.ram_gb:
            return f"no: {machine.ram_gb:.0f} GB RAM"
        return "yes (llama.cpp, GPU)" if machine.cuda_gb else "yes (llama.cpp)"
    if preset.gpu_4bit_gb is None:
        return "yes (llama.cpp)" if machine.llama_cpp else "yes (transformers)"
    if machine.cuda_gb is None:
        return "no CUDA GPU (CPU: minutes a reply)"
    if machine.cuda_gb < preset.gpu_4bit_gb:
        return f"no: GPU has {machine.cuda_gb:.0f} GB"
    return "yes (CUDA, 4-bit)"


def cached(preset: Preset) -> str:
    if preset.is_gguf:
        return "yes" if _gguf_cached(preset) else "no"
    if preset.repo_id is not None:
        return "yes" if hf_hub._hub_cached(preset.repo_id) else "no"
    if offline_model.gguf_file().is_file() or offline_model.is_prepared():
        return "yes"
    try:
        offline_model.find_parts()
    except offline_model.OfflineModelError:
        return f"no ({offline_model.PIP_INSTALL})"
    return "parts installed (joined on first use)"


def _gguf_cached(preset: Preset) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(preset.repo_id, preset.gguf_file, revision=preset.revision), str)
    except Exception:  # no huggingface_hub, unreadable cache: not cached
        return False


def table(machine: Machine | None = None) -> list[dict[str, str]]:
    machine = machine or probe()
    chosen = choose(machine).model
    return [
        {
            "model": name + (" (default here)" if name == chosen else ""),
            "from": f"{preset.repo_id}:{preset.gguf_file}" if preset.is_gguf else (preset.repo_id or "PyPI wheels"),
            "size": size(preset),
            "needs": needs(preset),
            "runs here": runs_here(preset, machine),
            "cached": cached(preset),
            "about": preset.summary,
        }
        for name, preset in PRESETS.items()
    ]


def render(rows: list[dict[str, str]], columns: Sequence[str]) -> str:
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns).rstrip() for r in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="viscoder models",
        description="The model presets (--model NAME, %config VisCoder.model = 'NAME'): size, what each "
        "needs, whether this machine runs it, whether it is already downloaded, and the model used "
        "when none is configured. Reads only local caches and what the machine reports.",
    )
    parser.add_argument("--about", action="store_true", help="add a line on each model")
    args = parser.parse_args(argv)
    machine = probe()
    columns = ["model", "size", "needs", "runs here", "cached", "from"] + (["about"] if args.about else [])
    print(render(table(machine), columns))
    choice = choose(machine)
    print(
        f"\nThis machine: {machine.describe()}.\nWith no model configured (model = '{AUTO}'): "
        f"{choice.model}, as {choice.reason}."
    )
    print(
        f"\nUse one with --model NAME (e.g. --model {OFFLINE}), %config VisCoder.model = 'NAME' or "
        "VISCODER_MODEL=NAME. Sizes marked (estimate) and GPU memory in 4-bit are estimates "
        "(backends/presets.py says how); a download is checked against the hub's size and sha256."
    )
    return 0
