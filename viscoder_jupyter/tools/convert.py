"""`viscoder convert MODEL --quant Q4_K_M`: a Qwen2 transformers model as a GGUF file for llama.cpp.

For the models no one has published a GGUF of (VisCoder-7B and -3B, VisCoder2-3B, a merged
fine-tune): MODEL is a local transformers folder, a hub id or a preset name. The weights are
written as an f16 GGUF with the `gguf` package (qwen2_gguf.py), then quantized by llama.cpp's own
quantizer (`llama_cpp.llama_model_quantize`, what llama-quantize runs), into the cache
(``$VISCODER_CACHE/converted``, else ``~/.cache/viscoder/converted``). Progress goes to stderr;
the path of the file is the last line on stdout, so

    %config VisCoder.model = "$(viscoder convert TIGER-Lab/VisCoder-3B --quant Q4_K_M)"

runs it. A file is written under a temporary name and renamed when whole: an interrupted
conversion leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from ..core.errors import BackendUnavailable
from .offline_model import default_cache_dir
from .qwen2_gguf import ConvertError, Log, read_config, write_f16_gguf

#: What --quant takes: F16 (no quantization) or one of llama.cpp's quantization types.
QUANTS = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q4_K_M", "Q4_K_S", "Q4_0", "Q3_K_M", "Q3_K_L", "Q2_K")
#: How often the quantizer's progress is printed.
PROGRESS_SECONDS = 5.0


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def converted_dir() -> Path:
    return default_cache_dir() / "converted"


def source_folder(model: str, log: Log) -> tuple[Path, str]:
    """(local folder, name) of MODEL: a folder as it is, a hub id (or preset) downloaded first."""
    from ..backends.hf_hub import MODEL_FILE_PATTERNS, resolve_model

    ref, is_local = resolve_model(model)
    if is_local:
        folder = Path(ref)
        return folder, f"{folder.name}-{hashlib.sha1(str(folder).encode()).hexdigest()[:8]}"
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ConvertError(f"Downloading {ref} needs huggingface_hub: pip install 'viscoder-jupyter[cpu]'.") from None
    log(f"downloading {ref} from the Hugging Face hub (the transformers weights)...")
    try:
        folder = snapshot_download(ref, allow_patterns=list(MODEL_FILE_PATTERNS))
    except Exception as exc:  # not found, gated, no network: one line
        text = str(exc).strip().splitlines()
        raise ConvertError(f"Could not download {ref}: {text[0][:300] if text else type(exc).__name__}") from None
    return Path(folder), ref.replace("/", "--")


def quantize(f16: Path, out: Path, quant: str, log: Log) -> None:
    """llama.cpp's quantizer on `f16`, writing `out`; prints how far it got every few seconds."""
    from ..backends.llamacpp_engine import import_llama_cpp, physical_cores

    llama_cpp = import_llama_cpp()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant}")
    params.nthread = physical_cores()
    result: list[int] = []
    worker = threading.Thread(
        target=lambda: result.append(llama_cpp.llama_model_quantize(str(f16).encode(), str(out).encode(), params)),
        daemon=True,
    )
    started = time.monotonic()
    # llama.cpp logs a line per tensor through llama-cpp-python's logger; errors still show.
    chatter = logging.getLogger("llama-cpp-python")
    level = chatter.level
    chatter.setLevel(logging.ERROR)
    try:
        worker.start()
        while worker.is_alive():
            worker.join(PROGRESS_SECONDS)
            if worker.is_alive():
                written = out.stat().st_size / 1e6 if out.exists() else 0.0
                log(f"  {quant}: {written:,.0f} MB written, {time.monotonic() - started:.0f} s")
    finally:
        chatter.setLevel(level)
    if result != [0]:
        raise ConvertError(f"llama.cpp's quantizer failed on {f16.name} (code {result[:1]}).")
    log(f"  {quant}: {out.stat().st_size / 1e6:,.0f} MB in {time.monotonic() - started:.0f} s")


def convert(model: str, quant: str = "Q4_K_M", out: Path | None = None, log: Log = _stderr) -> Path:
    """Convert MODEL to a GGUF file of `quant` and return its path (an existing one is kept)."""
    quant = quant.upper()
    if quant not in QUANTS:
        raise ConvertError(f"Unknown --quant {quant!r}; choose one of {', '.join(QUANTS)}.")
    folder, name = source_folder(model, log)
    config = read_config(folder)  # the architecture is refused before anything is written
    out = Path(out) if out else converted_dir() / f"{name}.{quant}.gguf"
    if out.is_file():
        log(f"{out} exists already (delete it to convert again)")
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    f16 = partial if quant == "F16" else out.with_name(f".{out.name}.{os.getpid()}.f16.partial")
    try:
        layers = config.get("num_hidden_layers")
        log(f"writing {folder.name} ({layers} layers) as f16 GGUF with the gguf package...")
        started = time.monotonic()
        write_f16_gguf(folder, f16, name, log)
        log(f"  f16: {f16.stat().st_size / 1e6:,.0f} MB in {time.monotonic() - started:.0f} s")
        if quant != "F16":
            log(f"quantizing to {quant} with llama.cpp's quantizer...")
            quantize(f16, partial, quant, log)
        os.replace(partial, out)
    finally:
        for leftover in {partial, f16}:
            with contextlib.suppress(OSError):
                leftover.unlink()
    log(f"done: {out} ({out.stat().st_size / 1e6:,.0f} MB)")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="viscoder convert",
        description="Convert a Qwen2 transformers model (every VisCoder) to a GGUF file for llama.cpp: "
        "a local folder, a hub id or a preset name. Prints the file's path (progress on stderr).",
    )
    parser.add_argument("model", help="a transformers folder, a hub id (TIGER-Lab/VisCoder-3B) or a preset name")
    parser.add_argument("--quant", default="Q4_K_M", help=f"F16 or a llama.cpp quantization: {', '.join(QUANTS)}")
    parser.add_argument("--out", type=Path, help="where to write it (default: the cache, named after the model)")
    args = parser.parse_args(argv)
    try:
        path = convert(args.model, args.quant, args.out)
    except (ConvertError, BackendUnavailable) as exc:
        print(f"viscoder convert: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("viscoder convert: interrupted; nothing was kept.", file=sys.stderr)
        return 130
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
