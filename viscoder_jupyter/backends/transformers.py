"""The in-process backend: a VisCoder (Qwen2.5-Coder) model run by transformers.

Importing this module imports neither torch nor transformers, so ``%load_ext`` stays fast.
`async_generate` decodes greedily in a worker thread (`decoding.greedy_decode`), streams
text to `on_text`, stops right after the first ```python block closes, and stops within one
forward pass when the coroutine is cancelled. Loading lives in `hf_models`, streaming in
`streaming`.

Two speed-ups keep the greedy output what plain token-by-token decoding gives:
- the key/value cache of the conversation is kept between a request and its self-debug
  turns (`kv_cache`), so a retry computes only the tokens after the longest cached prefix;
- prompt-lookup decoding: drafts of up to `prompt_lookup` tokens copied from earlier in the
  conversation (a corrected code block mostly repeats the previous one), checked by the
  model in one forward pass and kept as far as they match its own greedy choices.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from ..core.errors import BackendUnavailable
from ..core.settings import QUANTIZATIONS, choices_text, setting, setting_default
from . import require_installed
from .base import Backend, Messages, OnText, Reply, Sampling, run_cancellable
from .chat_tokens import hf_prompt_ids
from .decoding import greedy_decode, sampler
from .hf_hub import resolve_model
from .hf_models import LoadedModel, get_or_load, model_key
from .kv_cache import cached_length
from .streaming import FenceWatcher, IncrementalDecoder

#: What this backend imports to run: `pip install 'viscoder-jupyter[local]'`.
MODEL_STACK = ("torch", "transformers")
#: Draft length for prompt-lookup decoding (0: off); see benchmarks/generation_speed.py.
PROMPT_LOOKUP_TOKENS = 10


# --------------------------------------------------------------------------- the backend


class TransformersBackend(Backend):
    """Runs a VisCoder / Qwen2.5-Coder chat model in this process with transformers."""

    name = "transformers"

    def __init__(
        self,
        model: str,
        quantization: str = setting_default("quantization"),
        max_new_tokens: int = setting_default("max_new_tokens"),
        allow_cpu_download: bool = setting_default("allow_cpu_download"),
        *,
        reuse_cache: bool = True,
        prompt_lookup: int = PROMPT_LOOKUP_TOKENS,
        stop_at_fence: bool = True,
        dtype: str | None = None,
    ):
        require_installed(self.name, *MODEL_STACK)
        self.ref, self.is_local = resolve_model(model)
        self.quantization = (quantization or setting_default("quantization")).lower()
        if self.quantization not in QUANTIZATIONS:
            raise BackendUnavailable(f"Unknown quantization {quantization!r}; choose {choices_text(QUANTIZATIONS)}.")
        self.max_new_tokens = int(max_new_tokens)
        self.allow_cpu_download = bool(allow_cpu_download)
        self.reuse_cache = bool(reuse_cache)
        self.prompt_lookup = max(0, int(prompt_lookup))
        self.stop_at_fence = bool(stop_at_fence)
        self.dtype = dtype  # None: bf16 (fp16 on old GPUs), as hf_models.load_options decides
        self.last_stop_reason: str | None = None
        #: Prompt tokens of the last request taken from the kept cache (not computed again).
        self.last_reused_tokens = 0

    @classmethod
    def from_settings(cls, settings: Any) -> TransformersBackend:
        return cls(
            model=str(getattr(settings, "model", "") or ""),
            quantization=str(setting(settings, "quantization")),
            max_new_tokens=int(setting(settings, "max_new_tokens")),
            allow_cpu_download=bool(setting(settings, "allow_cpu_download")),
        )

    @classmethod
    def cache_key(cls, settings: Any) -> tuple:
        """``(name, model, quantization, device, max_new_tokens, allow_cpu_download)``.

        The loaded model itself is shared across all keys with the same `model_key` (model,
        quantization, device); the last two only change this thin instance.
        """
        require_installed(cls.name, *MODEL_STACK)  # the first call that would import torch
        return (
            cls.name,
            *model_key(settings),
            int(setting(settings, "max_new_tokens")),
            bool(setting(settings, "allow_cpu_download")),
        )

    # -- loading

    def load(self) -> LoadedModel:
        """Load (or reuse) the model; blocking and thread-safe. Raises BackendUnavailable."""
        return get_or_load(self.ref, self.is_local, self.quantization, self.allow_cpu_download, self.dtype)

    async def async_load(self) -> LoadedModel:
        return await asyncio.to_thread(self.load)

    async def async_prepare(self) -> None:
        await self.async_load()

    def identity(self) -> str:
        options = self.load().options  # the dtype this machine chose (hf_models.load_options)
        name = Path(self.ref).name if self.is_local else self.ref
        weights = "nf4" if options["load_in_4bit"] else options["dtype"]
        return f"{self.name}:{name}:{weights}:{options['device']}:max{self.max_new_tokens}"

    @property
    def model(self):
        return self.load().model

    @property
    def tokenizer(self):
        return self.load().tokenizer

    # -- generation

    def _generate_sync(
        self,
        loaded: LoadedModel,
        messages: Messages,
        on_text: OnText | None,
        cancel: threading.Event,
        sampling: Sampling | None = None,
    ) -> Reply | None:
        from transformers import DynamicCache

        tokenizer, model = loaded.tokenizer, loaded.model
        with loaded.lock:
            if cancel.is_set():
                return None
            ids = hf_prompt_ids(tokenizer, messages)  # contents never become special tokens
            cache, reused = loaded.prefix_cache.take(ids) if self.reuse_cache else (None, 0)
            if cache is None:
                cache = DynamicCache(config=model.config)
            decoder, fence = IncrementalDecoder(tokenizer), FenceWatcher()

            def on_token(token: int) -> str | None:
                delta = decoder.add([token])
                if delta and on_text is not None:
                    on_text(delta)
                return "fence" if self.stop_at_fence and fence.feed(delta) else None

            eos = loaded.generation_config.eos_token_id
            new_ids, tokens, reason = greedy_decode(
                model,
                ids,
                cache,
                reused,
                max_new_tokens=self.max_new_tokens,
                eos_ids=[eos] if isinstance(eos, int) else (eos or []),
                lookup=self.prompt_lookup,
                on_token=on_token,
                cancel=cancel,
                choose=sampler(sampling.temperature, sampling.top_p, sampling.seed) if sampling else None,
            )
            rest = decoder.flush()
            if rest and on_text is not None:
                on_text(rest)
            if self.reuse_cache:
                loaded.prefix_cache.put(tokens[: cached_length(cache)], len(ids), cache)
            self.last_reused_tokens, self.last_stop_reason = reused, reason
            text = tokenizer.decode(new_ids, skip_special_tokens=True)
            return Reply(text=text, prompt_tokens=len(ids), completion_tokens=len(new_ids))

    async def async_prompt_size(self, messages: Messages) -> tuple[int, int]:
        loaded = await asyncio.to_thread(self.load)
        ids = await asyncio.to_thread(hf_prompt_ids, loaded.tokenizer, messages)
        return len(ids), len(ids) - loaded.prefix_cache.reusable(ids) if self.reuse_cache else len(ids)

    async def async_generate(
        self, messages: Messages, on_text: OnText | None = None, *, sampling: Sampling | None = None
    ) -> Reply:
        loaded = await asyncio.to_thread(self.load)
        reply = await run_cancellable(
            None, lambda cancel: self._generate_sync(loaded, messages, on_text, cancel, sampling)
        )
        assert reply is not None
        return reply
