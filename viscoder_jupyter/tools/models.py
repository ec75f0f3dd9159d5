"""`viscoder models`: the model presets, what each needs, and whether it is here already.

Reads only the local Hugging Face cache and the offline model's cache (no network).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..backends import hf_hub
from ..backends.presets import OFFLINE, PRESETS, Preset, llama_cpp_installed
from ..core.settings import setting_default
from . import offline_model


def needs(preset: Preset) -> str:
    if preset.gpu_4bit_gb is None:
        engine = (
            "llama.cpp" if llama_cpp_installed() else "transformers (pip install 'viscoder-jupyter[cpu]' for llama.cpp)"
        )
        return f"CPU, on {engine}"
    return f"GPU, ~{preset.gpu_4bit_gb:g} GB in 4-bit (estimate)"


def size(preset: Preset) -> str:
    if preset.repo_id is None:
        return f"{offline_model.EXPECTED_SIZE / 1e9:.2f} GB (PyPI)"
    return f"{preset.download_gb:g} GB"


def cached(preset: Preset) -> str:
    if preset.repo_id is not None:
        return "yes" if hf_hub._hub_cached(preset.repo_id) else "no"
    if offline_model.gguf_file().is_file() or offline_model.is_prepared():
        return "yes"
    try:
        offline_model.find_parts()
    except offline_model.OfflineModelError:
        return f"no ({offline_model.PIP_INSTALL})"
    return "parts installed (joined on first use)"


def table() -> list[dict[str, str]]:
    default = setting_default("model")
    return [
        {
            "model": name + (" (default)" if preset.repo_id == default else ""),
            "hub id": preset.repo_id or "-",
            "size": size(preset),
            "needs": needs(preset),
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
        "needs, and whether it is already downloaded. Reads only local caches.",
    )
    parser.add_argument("--about", action="store_true", help="add a line on each model")
    args = parser.parse_args(argv)
    columns = ["model", "hub id", "size", "needs", "cached"] + (["about"] if args.about else [])
    print(render(table(), columns))
    print(
        f"\nUse one with --model NAME (e.g. --model {OFFLINE}), %config VisCoder.model = 'NAME' or "
        "VISCODER_MODEL=NAME. GPU memory in 4-bit is an estimate (backends/presets.py says how)."
    )
    return 0
