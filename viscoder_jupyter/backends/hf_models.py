"""Loading a chat model with transformers: where, how (4-bit or bf16), and once per process.

Imports neither torch nor transformers at module level; both load inside the
functions that need them.

- One model per (model, quantization, device) is loaded per process and shared by every
  backend instance (`_MODELS`, a small LRU).
- CUDA: 4-bit NF4 through bitsandbytes, ``device_map="auto"``. CPU: bf16 where the CPU
  computes it natively, float32 elsewhere when the weights fit (torch emulates bf16 there).
  ``quantization="4bit"`` forces bitsandbytes (it also runs on the CPU), ``"none"`` no 4-bit.
- A hub model of 3B parameters or more is not downloaded to run on a CPU unless allowed
  (hf_hub.py: which model, and whether it may be fetched).
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import BackendUnavailable
from ..core.settings import QUANTIZATIONS, choices_text, setting, setting_default
from . import hf_hub
from .hf_hub import _LOCAL_HINT, _OFFLINE_HINT, param_billions, resolve_model
from .kv_cache import PrefixCache

#: At most this many models stay loaded (least recently used dropped first).
MAX_LOADED_MODELS = 2


# --------------------------------------------------------------------------- decisions


def load_options(
    quantization: str, cuda_available: bool, bf16_supported: bool = True, cpu_float32: bool = False
) -> dict:
    """How to load a model, as plain data: the decision table, with no torch import.

    Returns ``{"device", "load_in_4bit", "dtype", "device_map"}``:

    ============  ======  ====================================================
    quantization  CUDA    result
    ============  ======  ====================================================
    auto          yes     4-bit NF4 (bitsandbytes), compute bf16, device_map auto
    auto          no      bf16 on the CPU (float32 with `cpu_float32`)
    4bit          yes     4-bit NF4, device_map auto
    4bit          no      4-bit NF4 on the CPU (bitsandbytes >= 0.45 runs there)
    none          yes     bf16, device_map auto
    none          no      bf16 on the CPU (float32 with `cpu_float32`)
    ============  ======  ====================================================

    On a GPU without bf16 (before Ampere) the compute dtype is fp16 instead.
    `cpu_float32` (`prefer_float32_on_cpu`): the CPU lacks native bf16 and float32 fits.
    """
    q = (quantization or setting_default("quantization")).lower()
    if q not in QUANTIZATIONS:
        raise BackendUnavailable(f"Unknown quantization {quantization!r}; choose {choices_text(QUANTIZATIONS)}.")
    device = "cuda" if cuda_available else "cpu"
    dtype = "bfloat16" if (bf16_supported or not cuda_available) else "float16"
    load_in_4bit = q == "4bit" or (q == "auto" and cuda_available)
    if cpu_float32 and not cuda_available and not load_in_4bit:
        dtype = "float32"
    return {
        "device": device,
        "load_in_4bit": load_in_4bit,
        "dtype": dtype,
        "device_map": "auto" if cuda_available else "cpu",
    }


@functools.cache
def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _bf16_supported() -> bool:
    import torch

    return not torch.cuda.is_available() or bool(torch.cuda.is_bf16_supported())


#: CPU flags (x86 /proc/cpuinfo "flags", Arm "Features") of native bf16 arithmetic.
_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}
#: Where Linux lists them.
CPUINFO = Path("/proc/cpuinfo")
#: float32 weights may take at most this share of the memory available now.
FLOAT32_MEMORY_SHARE = 0.5


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bf16 natively; without it torch emulates bf16 matmuls.

    Measured on a 2-core AVX2 machine (the 0.5B model): a 520-token prompt took 50 s in
    bf16 and 9.6 s in float32. Where /proc/cpuinfo (`CPUINFO`) cannot be read, no.
    """
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text(errors="replace")
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            flags.update(value.split())
    return bool(flags & _BF16_FLAGS)


def prefer_float32_on_cpu(native_bf16: bool, float32_bytes: float | None, available_bytes: float | None) -> bool:
    """float32 on a CPU without native bf16, when the weights fit in float32 (twice bf16's memory)."""
    if native_bf16 or not float32_bytes or not available_bytes:
        return False
    return float32_bytes <= FLOAT32_MEMORY_SHARE * available_bytes


def auto_float32_on_cpu(ref: str, is_local: bool) -> bool:
    """What `auto` decides on this CPU for this model (`prefer_float32_on_cpu` on its facts)."""
    return prefer_float32_on_cpu(cpu_has_native_bf16(), float32_bytes(ref, is_local), available_memory_bytes())


def available_memory_bytes() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


_BYTES_PER_PARAM = {"float32": 4, "float16": 2, "bfloat16": 2}


def float32_bytes(ref: str, is_local: bool) -> float | None:
    """The model's weights in float32: from a local folder's weight files and their dtype,
    or from the size a hub id states ('VisCoder-7B')."""
    if not is_local:
        size = param_billions(ref)
        return size * 4e9 if size else None
    folder = Path(ref)
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    stored = _BYTES_PER_PARAM.get(str(config.get("torch_dtype") or config.get("dtype") or ""))
    weights = sum(f.stat().st_size for pattern in ("*.safetensors", "*.bin") for f in folder.glob(pattern))
    return weights / stored * 4 if stored and weights else None


def _settings_model(settings: Any) -> tuple[str, bool]:
    return resolve_model(str(getattr(settings, "model", "") or ""))


def model_key(settings: Any) -> tuple[str, str, str]:
    """(model, quantization, device): what identifies one loaded model in this process."""
    ref, _ = _settings_model(settings)
    quantization = str(setting(settings, "quantization")).lower()
    return (ref, quantization, "cuda" if cuda_available() else "cpu")


# --------------------------------------------------------------------------- loading


@dataclass(eq=False)
class LoadedModel:
    key: tuple
    model: Any
    tokenizer: Any
    generation_config: Any
    options: dict
    load_seconds: float = 0.0
    #: Serializes generate() on this model (a cancelled run finishes its token first).
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Key/value caches of recent conversations (see kv_cache.py); used under `lock`.
    prefix_cache: PrefixCache = field(default_factory=PrefixCache)


_MODELS: OrderedDict[tuple, LoadedModel] = OrderedDict()
_MODELS_LOCK = threading.RLock()


@contextlib.contextmanager
def quiet_loading():
    """No tqdm progress bars from transformers / huggingface_hub while loading (a download
    reports its progress as loop events instead: hf_hub.download_snapshot)."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def _eos_ids(model, tokenizer) -> list[int]:
    ids: list[int] = []

    def add(value):
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, int) and v >= 0 and v not in ids:
                ids.append(v)

    add(getattr(model.generation_config, "eos_token_id", None))
    add(tokenizer.eos_token_id)
    vocab = tokenizer.get_vocab()
    for token in ("<|im_end|>", "<|endoftext|>"):
        if token in vocab:
            add(vocab[token])
    return ids


def _greedy_config(model, tokenizer, max_new_tokens: int):
    """A clean greedy GenerationConfig (no sampling knobs inherited from the checkpoint)."""
    from transformers import GenerationConfig

    eos = _eos_ids(model, tokenizer)
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = getattr(model.generation_config, "pad_token_id", None)
    if pad is None and eos:
        pad = eos[0]
    return GenerationConfig(
        do_sample=False,
        max_new_tokens=int(max_new_tokens),
        eos_token_id=eos or None,
        pad_token_id=pad,
        bos_token_id=getattr(model.generation_config, "bos_token_id", None),
    )


def _import_bitsandbytes_quietly() -> None:
    """Import bitsandbytes now (a clear error if missing) without its import-time warnings.

    On CPUs with AVX512-BF16, bitsandbytes 0.50 logs a warning at import when the optional
    `kernels` package (which would fetch a kernel from the hub) is absent; the fallback works.
    """
    import logging

    logger = logging.getLogger("bitsandbytes")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        import bitsandbytes  # noqa: F401
    finally:
        logger.setLevel(level)


def _from_pretrained_kwargs(options: dict) -> dict:
    import torch

    dtype = getattr(torch, options["dtype"])
    kwargs: dict[str, Any] = {"dtype": dtype, "device_map": options["device_map"]}
    if options["load_in_4bit"]:
        try:
            from transformers import BitsAndBytesConfig

            _import_bitsandbytes_quietly()
        except ImportError as exc:
            raise BackendUnavailable(
                f"4-bit loading needs bitsandbytes ({exc}). Install it with `pip install bitsandbytes`, "
                "or set `%config VisCoder.quantization = 'none'` to load in bf16."
            ) from None
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=dtype,
            bnb_4bit_use_double_quant=True,
        )
    return kwargs


def _load(ref: str, is_local: bool, options: dict, key: tuple) -> LoadedModel:
    import time

    import torch  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    local_only = is_local or hf_hub._hub_offline()
    kwargs = _from_pretrained_kwargs(options)
    where = f"folder {ref!r}" if is_local else f"hub model {ref!r}"
    source = ref
    if not local_only and not hf_hub._hub_cached(ref):
        # Downloaded here rather than inside from_pretrained, so the user sees its progress
        # and Cancel stops it (downloads.py); then loaded from the snapshot folder.
        source = hf_hub.download_snapshot(ref)
    try:
        with quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
            model = AutoModelForCausalLM.from_pretrained(source, local_files_only=local_only, **kwargs)
    except BackendUnavailable:
        raise
    except (MemoryError, torch.OutOfMemoryError) as exc:
        raise BackendUnavailable(
            f"Not enough memory to load the {where} ({type(exc).__name__}). Choose a smaller model, "
            "or on a GPU set `%config VisCoder.quantization = '4bit'`. " + _OFFLINE_HINT
        ) from None
    except Exception as exc:  # OSError, hub errors, connection errors, ValueError for bad folders
        detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        if is_local:
            raise BackendUnavailable(f"Could not load the model in {where}: {detail}. {_LOCAL_HINT}") from exc
        offline = " (HF_HUB_OFFLINE is set)" if hf_hub._hub_offline() else ""
        raise BackendUnavailable(
            f"Could not download or load {where} from the Hugging Face hub{offline}: {detail}. "
            f"Check the id and your network, or use a local folder. {_LOCAL_HINT} {_OFFLINE_HINT}"
        ) from exc
    if not getattr(tokenizer, "chat_template", None):
        raise BackendUnavailable(
            f"The {where} has no chat template; VisCoder needs an instruct/chat model "
            "(e.g. TIGER-Lab/VisCoder-7B or Qwen2.5-Coder-*-Instruct)."
        )
    model.eval()
    generation_config = _greedy_config(model, tokenizer, setting_default("max_new_tokens"))
    # The checkpoint's sampling defaults (temperature, top_p, repetition_penalty...) would be
    # merged into every call's config by transformers 5: replace them with the greedy one.
    model.generation_config = generation_config
    return LoadedModel(
        key=key,
        model=model,
        tokenizer=tokenizer,
        generation_config=generation_config,
        options=options,
        load_seconds=time.perf_counter() - started,
    )


def get_or_load(
    ref: str, is_local: bool, quantization: str, allow_cpu_download: bool, dtype: str | None = None
) -> LoadedModel:
    """`dtype` ("float32", ...) overrides the table's compute dtype; float32 makes greedy
    decoding independent of how tokens are batched (see kv_cache.py), at twice the memory.
    Without it, a CPU lacking native bf16 gets float32 where it fits (`prefer_float32_on_cpu`)."""
    cuda = cuda_available()
    key = (ref, quantization, "cuda" if cuda else "cpu") + ((dtype,) if dtype else ())
    with _MODELS_LOCK:
        loaded = _MODELS.get(key)
        if loaded is not None:
            _MODELS.move_to_end(key)
            return loaded
        if not is_local:
            hf_hub._check_hub_model(ref, cuda=cuda, allow_cpu_download=allow_cpu_download)
        cpu_float32 = not cuda and auto_float32_on_cpu(ref, is_local)
        options = load_options(quantization, cuda, _bf16_supported(), cpu_float32)
        if dtype:
            options["dtype"] = dtype
        loaded = _load(ref, is_local, options, key)
        _MODELS[key] = loaded
        while len(_MODELS) > MAX_LOADED_MODELS:
            _MODELS.popitem(last=False)
        return loaded
