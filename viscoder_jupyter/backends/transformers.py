"""The in-process backend: a VisCoder (Qwen2.5-Coder) model run by transformers.

Importing this module imports neither torch nor transformers, so ``%load_ext`` stays fast.
`async_generate` runs greedy ``model.generate`` in a worker thread, streams text to
`on_text`, stops right after the first ```python block closes, and stops within one token
when the coroutine is cancelled. Loading lives in `hf_models`, streaming in `streaming`.
"""
from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from ..errors import BackendUnavailable
from .base import Backend, Messages, OnText, Reply
from .hf_models import LoadedModel, get_or_load, model_key, resolve_model
from .streaming import make_streamer, build_stopping_criteria

#: After a cancellation, wait at most this long for the worker to stop (one token, normally).
CANCEL_GRACE_S = 5.0


# --------------------------------------------------------------------------- the backend

class TransformersBackend(Backend):
    """Runs a VisCoder / Qwen2.5-Coder chat model in this process with transformers."""

    name = "transformers"

    def __init__(self, model: str, quantization: str = "auto", max_new_tokens: int = 2048,
                 allow_cpu_download: bool = False):
        self.ref, self.is_local = resolve_model(model)
        self.quantization = (quantization or "auto").lower()
        if self.quantization not in ("auto", "4bit", "none"):
            raise BackendUnavailable(f"Unknown quantization {quantization!r}; choose auto, 4bit or none.")
        self.max_new_tokens = int(max_new_tokens)
        self.allow_cpu_download = bool(allow_cpu_download)
        self.last_stop_reason: str | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> "TransformersBackend":
        return cls(
            model=str(getattr(settings, "model", "") or ""),
            quantization=str(getattr(settings, "quantization", "auto") or "auto"),
            max_new_tokens=int(getattr(settings, "max_new_tokens", 2048)),
            allow_cpu_download=bool(getattr(settings, "allow_cpu_download", False)),
        )

    @classmethod
    def cache_key(cls, settings: Any) -> tuple:
        """``(name, model, quantization, device, max_new_tokens, allow_cpu_download)``.

        The loaded model itself is shared across all keys with the same `model_key` (model,
        quantization, device); the last two only change this thin instance.
        """
        return (cls.name, *model_key(settings), int(getattr(settings, "max_new_tokens", 2048)),
                bool(getattr(settings, "allow_cpu_download", False)))

    # -- loading

    def load(self) -> LoadedModel:
        """Load (or reuse) the model; blocking and thread-safe. Raises BackendUnavailable."""
        return get_or_load(self.ref, self.is_local, self.quantization, self.allow_cpu_download)

    async def async_load(self) -> LoadedModel:
        return await asyncio.to_thread(self.load)

    async def async_prepare(self) -> None:
        await self.async_load()

    @property
    def model(self):
        return self.load().model

    @property
    def tokenizer(self):
        return self.load().tokenizer

    # -- generation

    def _generate_sync(self, loaded: LoadedModel, messages: Messages, on_text: OnText | None,
                       cancel: threading.Event) -> Reply | None:
        import copy

        import torch
        from transformers import StoppingCriteriaList

        tokenizer, model = loaded.tokenizer, loaded.model
        with loaded.lock:
            if cancel.is_set():
                return None
            prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            encoded = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
            input_ids = encoded["input_ids"].to(model.device)
            attention_mask = encoded["attention_mask"].to(model.device)
            prompt_length = int(input_ids.shape[1])
            config = copy.copy(loaded.generation_config)
            config.max_new_tokens = self.max_new_tokens
            stop = build_stopping_criteria(tokenizer, prompt_length, cancel)
            streamer = make_streamer(tokenizer, on_text) if on_text is not None else None
            with torch.inference_mode():
                output = model.generate(
                    input_ids=input_ids, attention_mask=attention_mask, generation_config=config,
                    stopping_criteria=StoppingCriteriaList([stop]), streamer=streamer,
                )
            new_ids = output[0, prompt_length:].tolist()
            self.last_stop_reason = stop.reason or (
                "length" if len(new_ids) >= self.max_new_tokens else "eos")
            text = tokenizer.decode(new_ids, skip_special_tokens=True)
            return Reply(text=text, prompt_tokens=prompt_length, completion_tokens=len(new_ids))

    async def async_generate(self, messages: Messages, on_text: OnText | None = None) -> Reply:
        loaded = await asyncio.to_thread(self.load)
        cancel = threading.Event()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, self._generate_sync, loaded, messages, on_text, cancel)
        try:
            reply = await asyncio.shield(future)
        except asyncio.CancelledError:
            cancel.set()
            # Let the worker finish its current token so the model is free for the next request.
            with contextlib.suppress(Exception):
                await asyncio.wait({future}, timeout=CANCEL_GRACE_S)
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: no 'exception was never retrieved' noise
            else:
                future.add_done_callback(lambda f: f.cancelled() or f.exception())
            raise
        assert reply is not None
        return reply
