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
import codecs
import contextvars
import threading
from pathlib import Path
from typing import Any

from ..core.errors import BackendFailed, ContextFull
from ..core.settings import setting, setting_default
from .base import Backend, Messages, OnText, Reply, Sampling, run_cancellable
from .gguf_files import _first_line, fetch_hub_gguf, parse_model
from .kv_cache import common_prefix
from .llamacpp_engine import (
    DEFAULT_N_CTX,
    PROMPT_LOOKUP_TOKENS,
    LoadedGGUF,
    _Cancelled,
    _classes,
    gpu_offload,
    import_llama_cpp,
    load_gguf,
    worker,
)
from .streaming import FenceWatcher

#: Sampling looks for the nucleus among this many likeliest tokens (as decoding.sampler does).
SAMPLING_TOP_K = 64


# --------------------------------------------------------------------------- the backend


class LlamaCppBackend(Backend):
    """Runs a GGUF chat model (VisCoder, Qwen2.5-Coder...) in this process with llama.cpp."""

    name = "llamacpp"

    def __init__(
        self,
        model: str,
        max_new_tokens: int = setting_default("max_new_tokens"),
        allow_cpu_download: bool = setting_default("allow_cpu_download"),
        *,
        n_ctx: int = DEFAULT_N_CTX,
        prompt_lookup: int = PROMPT_LOOKUP_TOKENS,
        reuse_cache: bool = True,
        stop_at_fence: bool = True,
        n_threads: int | None = None,
    ):
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
    def from_settings(cls, settings: Any) -> LlamaCppBackend:
        return cls(
            model=str(getattr(settings, "model", "") or ""),
            max_new_tokens=int(setting(settings, "max_new_tokens")),
            allow_cpu_download=bool(setting(settings, "allow_cpu_download")),
            n_ctx=int(getattr(settings, "n_ctx", 0) or DEFAULT_N_CTX),
        )

    @classmethod
    def cache_key(cls, settings: Any) -> tuple:
        """The loaded model itself is shared by every instance with the same file and n_ctx."""
        return (
            cls.name,
            str(getattr(settings, "model", "") or "").strip(),
            int(getattr(settings, "n_ctx", 0) or DEFAULT_N_CTX),
            int(setting(settings, "max_new_tokens")),
            bool(setting(settings, "allow_cpu_download")),
        )

    # -- loading

    def model_path(self) -> str:
        """The local GGUF file (a hub file is downloaded first, if allowed)."""
        if self.filename is None:
            return self.ref
        return fetch_hub_gguf(self.ref, self.filename, gpu=gpu_offload(), allow_cpu_download=self.allow_cpu_download)

    def load(self) -> LoadedGGUF:
        """Load (or reuse) the model; blocking and thread-safe. Raises BackendUnavailable."""
        import_llama_cpp()  # the install hint before anything else
        return load_gguf(self.model_path(), self.n_ctx, self.n_threads)

    async def async_prepare(self) -> None:
        # The request's download watch (downloads.py) travels with the context: an executor drops it.
        context = contextvars.copy_context()
        await asyncio.get_running_loop().run_in_executor(worker(), context.run, self.load)

    def identity(self) -> str:
        loaded = self.load()
        return f"{self.name}:{Path(loaded.path).name}:{loaded.quantization}:max{self.max_new_tokens}"

    # -- generation

    def _generate_sync(
        self,
        loaded: LoadedGGUF,
        messages: Messages,
        on_text: OnText | None,
        cancel: threading.Event,
        sampling: Sampling | None = None,
    ) -> Reply | None:
        llm = loaded.llm
        with loaded.lock:
            if cancel.is_set():
                return None
            ids = loaded.prompt_tokens(messages)
            room = loaded.n_ctx - len(ids)
            if room < 2:
                raise ContextFull(
                    f"The conversation is {len(ids)} tokens, more than the {loaded.n_ctx}-token "
                    "context the model was loaded with: ask with fewer or smaller frames."
                )
            max_new = min(self.max_new_tokens, room)
            # The longest prefix already in llama.cpp's cache stays; at least one prompt token is
            # evaluated, since its logits choose the first reply token.
            reused = 0
            if self.reuse_cache and llm.n_tokens > 0:
                reused = min(common_prefix(llm.input_ids[: llm.n_tokens].tolist(), ids), len(ids) - 1)
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
                options = dict(
                    temp=float(sampling.temperature), top_p=float(sampling.top_p), top_k=SAMPLING_TOP_K, min_p=0.0
                )
            llm.draft_model = _classes()[1](self.prompt_lookup) if self.prompt_lookup else None
            llm.viscoder_cancel, llm.viscoder_prompt = cancel, True
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            fence, parts, new, reason = FenceWatcher(), [], [], "length"

            def emit(delta: str) -> None:
                if delta:
                    parts.append(delta)
                    if on_text is not None:
                        on_text(delta)

            tokens = llm.generate(
                ids[reused:],
                reset=False,
                typical_p=1.0,
                repeat_penalty=1.0,
                frequency_penalty=0.0,
                presence_penalty=0.0,
                **options,
            )
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

    async def async_prompt_size(self, messages: Messages) -> tuple[int, int]:
        loaded = await asyncio.get_running_loop().run_in_executor(worker(), self.load)

        def count() -> tuple[int, int]:  # on the llama.cpp thread: no generation changes the cache meanwhile
            ids, llm = loaded.prompt_tokens(messages), loaded.llm
            cached = common_prefix(llm.input_ids[: llm.n_tokens].tolist(), ids) if self.reuse_cache else 0
            return len(ids), len(ids) - min(cached, len(ids) - 1)

        return await asyncio.get_running_loop().run_in_executor(worker(), count)

    async def async_generate(
        self, messages: Messages, on_text: OnText | None = None, *, sampling: Sampling | None = None
    ) -> Reply:
        loaded = await asyncio.get_running_loop().run_in_executor(worker(), self.load)
        reply = await run_cancellable(
            worker(), lambda cancel: self._generate_sync(loaded, messages, on_text, cancel, sampling)
        )
        assert reply is not None
        return reply
