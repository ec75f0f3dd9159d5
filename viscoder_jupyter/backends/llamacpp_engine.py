"""llama.cpp in this process: importing llama-cpp-python, the one thread it runs on, the
machine's cores, and loading a GGUF model once (tokens, chat template, end-of-generation).

Importing this module does not import llama_cpp.
"""

from __future__ import annotations

import atexit
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

from ..core.errors import BackendUnavailable
from .base import Messages
from .chat_tokens import split_markers, template_spans
from .decoding import lookup_draft
from .gguf_files import _GGUF_HINT, _first_line

#: Draft length for prompt-lookup decoding (0: off); see benchmarks/generation_speed.py.
PROMPT_LOOKUP_TOKENS = 10
#: Tokens that must repeat an earlier stretch of the conversation before a draft is copied from it.
LOOKUP_NGRAM = 3
#: Context (prompt + reply) the model is loaded with, unless settings say otherwise.
DEFAULT_N_CTX = 8192
#: Prompt tokens per llama_decode call; a cancellation is noticed between two of them.
PROMPT_BATCH = 128

#: At most this many GGUF models stay loaded (least recently used dropped first).
MAX_LOADED_MODELS = 2


def amx_cpu(cpuinfo: str | None = None) -> bool:
    """The CPU announces Intel AMX tiles. llama.cpp then repacks weights into AMX buffers ("extra
    buffer types"), and on such a machine under a VM (Sapphire Rapids in Firecracker) the first
    llama_decode crashed the process with SIGSEGV; without the extra buffers it runs."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                cpuinfo = handle.read()
        except OSError:
            return False
    return bool(re.search(r"^flags\s*:.*\bamx_tile\b", cpuinfo, re.MULTILINE))


@contextlib.contextmanager
def _model_params(**fields):
    """llama-cpp-python's Llama() takes no option for some model parameters (use_extra_bufts):
    its default parameters get `fields` while a model loads (under _MODELS_LOCK, one load at a time)."""
    import_llama_cpp()
    low = sys.modules["llama_cpp.llama_cpp"]  # where Llama() looks the defaults up
    default = low.llama_model_default_params

    def params():
        made = default()
        for name, value in fields.items():
            setattr(made, name, value)
        return made

    low.llama_model_default_params = params
    try:
        yield
    finally:
        low.llama_model_default_params = default


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


@functools.cache
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
                batch = tokens[start : start + self.n_batch]
                n_past = self.n_tokens
                self._batch.set_batch(batch=batch, n_past=n_past, logits_all=all_rows)
                self._ctx.decode(self._batch)
                self.input_ids[n_past : n_past + len(batch)] = batch
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
            names.setdefault(
                getattr(llama_cpp, attr), attr.removeprefix("LLAMA_FTYPE_").removeprefix("MOSTLY_").removeprefix("ALL_")
            )
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
        # llama.cpp pads the context it allocates (to a multiple of 256), llama-cpp-python's token
        # buffer keeps the size asked for: the smaller one is what fits.
        return min(int(self.llm.n_ctx()), len(self.llm.input_ids))

    def prompt_tokens(self, messages: Messages) -> list[int]:
        """The conversation in the model's chat template; only the template's own markers are special
        tokens: a content holding "<|im_end|>" (from a column name, say) stays text (chat_tokens)."""

        def render(ms: Messages) -> str:
            return self.template.render(
                messages=ms, add_generation_prompt=True, bos_token=self.bos_token, eos_token=self.eos_token
            )

        spans = template_spans(render, messages)
        is_control = import_llama_cpp().llama_vocab_is_control
        markers = {
            _special_text(self.llm, token)
            for text, from_template in spans
            if from_template
            for token in self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            if is_control(self.vocab, token)
        }
        ids: list[int] = []
        for text, marker in split_markers(spans, markers):
            # The template writes any BOS itself (as transformers' apply_chat_template does).
            ids += self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=marker)
        return ids

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
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)


_MODELS: OrderedDict[tuple, LoadedGGUF] = OrderedDict()
_MODELS_LOCK = threading.RLock()


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
        extra = {"use_extra_bufts": False} if amx_cpu() and os.environ.get("VISCODER_LLAMA_AMX") != "1" else {}
        try:
            with _model_params(**extra):
                llm = _load(ViscoderLlama, PromptLookup, path, n_ctx, threads)
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
            path=str(path),
            llm=llm,
            template=_compile_template(template),
            bos_token=_special_text(llm, llm.token_bos()),
            eos_token=_special_text(llm, llm.token_eos()),
            quantization=quantization_of(llm.metadata or {}, Path(path).name),
            n_threads=threads,
            load_seconds=time.perf_counter() - started,
        )
        _MODELS[key] = loaded
        while len(_MODELS) > MAX_LOADED_MODELS:
            _MODELS.popitem(last=False)
        return loaded


def _load(ViscoderLlama, PromptLookup, path, n_ctx: int, threads: int):  # noqa: N803 - the classes of _classes()
    return ViscoderLlama(
        model_path=str(path),
        n_ctx=int(n_ctx),
        n_batch=PROMPT_BATCH,
        n_ubatch=PROMPT_BATCH,
        n_threads=threads,
        n_threads_batch=threads,
        n_gpu_layers=-1 if gpu_offload() else 0,
        draft_model=PromptLookup(PROMPT_LOOKUP_TOKENS),
        verbose=False,
    )
