"""Recorded replies, served in order: reproducible demos and tests, no model needed."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from typing import ClassVar

from ..core.errors import BackendUnavailable, ReplayExhausted
from .base import Backend, Messages, OnText, Reply, Sampling

_SETTING_HINT = "set it with %config VisCoder.replay = 'replies.jsonl' or the VISCODER_REPLAY variable"


class ReplayBackend(Backend):
    """A JSONL file, one {"reply": "..."} a line; each request takes the next line."""

    name: ClassVar[str] = "replay"

    def __init__(self, path: str):
        self.path = path
        self.replies = _read_replies(path)
        self._next = 0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings) -> ReplayBackend:
        if not settings.replay:
            raise BackendUnavailable(f"The replay backend needs a file of recorded replies: {_SETTING_HINT}.")
        return cls(settings.replay)

    @classmethod
    def cache_key(cls, settings) -> tuple:
        # One position per file for the whole session, so a notebook replays in order;
        # a file written anew starts from its first line again.
        path = os.path.abspath(settings.replay) if settings.replay else ""
        try:
            stamp = os.stat(path).st_mtime_ns
        except OSError:
            stamp = None
        return (cls.name, path, stamp)

    @property
    def remaining(self) -> int:
        return len(self.replies) - self._next

    async def async_generate(
        self, messages: Messages, on_text: OnText | None = None, *, sampling: Sampling | None = None
    ) -> Reply:
        with self._lock:
            if self._next >= len(self.replies):
                raise ReplayExhausted(
                    f"All {len(self.replies)} recorded replies in {self.path} have been used. "
                    "Add more lines to the file, or switch backend: %config VisCoder.backend = 'transformers'."
                )
            text = self.replies[self._next]
            self._next += 1
        if on_text:
            for line in text.splitlines(keepends=True):
                on_text(line)
                await asyncio.sleep(0)  # let a cancellation land between lines, like a real stream
        return Reply(text=text, prompt_tokens=0, completion_tokens=len(text.split()))


def _read_replies(path: str) -> list[str]:
    if not os.path.isfile(path):
        raise BackendUnavailable(f"Replay file {path!r} not found; {_SETTING_HINT}.")
    replies = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                replies.append(json.loads(line)["reply"])
            except (ValueError, KeyError, TypeError):
                raise BackendUnavailable(
                    f'{path}, line {number}: expected a JSON object like {{"reply": "..."}}.'
                ) from None
    return replies
