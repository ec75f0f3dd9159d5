"""The contract every model backend keeps."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

#: After a cancellation, wait at most this long for the worker to stop (one token, normally).
CANCEL_GRACE_S = 5.0

Messages = list[dict[str, str]]
OnText = Callable[[str], None]


@dataclass
class Reply:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float | None = None  # set when the reply was measured elsewhere (a shared reply)


@dataclass(frozen=True)
class Sampling:
    """Draw tokens instead of taking the likeliest: a different candidate when greedy retries
    keep writing the same failing code. The seed makes a candidate reproducible."""

    temperature: float = 0.8
    top_p: float = 0.95
    seed: int = 0


class Backend(ABC):
    """Turns chat messages into a reply; `on_text` receives text as it streams.

    Cancelling the coroutine must stop the generation promptly.
    """

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Any) -> Backend:
        """Build from a `VisCoder` settings object (see settings.py)."""

    @classmethod
    def cache_key(cls, settings: Any) -> tuple:
        """Requests with the same key share one backend instance (and its loaded model)."""
        return (cls.name,)

    async def async_prepare(self) -> None:  # noqa: B027 - optional: backends that load nothing keep it
        """Get ready to generate (load weights); the loop calls it before the first attempt."""

    def identity(self) -> str:
        """What decides the replies besides the conversation (model, dtype, reply length):
        recorded replies are shared only between backends of one identity. After async_prepare."""
        return self.name

    async def async_prompt_size(self, messages: Messages) -> tuple[int, int] | None:
        """(tokens in the prompt, tokens of it not read before), or None where not known (a
        server): the live view says what the model is reading before its first token."""
        return None

    @abstractmethod
    async def async_generate(
        self, messages: Messages, on_text: OnText | None = None, *, sampling: Sampling | None = None
    ) -> Reply:
        """Greedy unless `sampling` is given (backends that cannot sample may ignore it)."""


async def run_cancellable(executor, work: Callable[[threading.Event], Any]) -> Any:
    """`work(cancel)` on `executor`; cancelling the coroutine sets `cancel`, which the worker
    checks between tokens, and waits for it to stop, so the model is free for the next request.

    `on_text` callbacks from the worker arrive on its thread: the loop hands events to front
    ends on the loop's own thread (loop.on_loop_thread).
    """
    cancel = threading.Event()
    future = asyncio.get_running_loop().run_in_executor(executor, work, cancel)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        cancel.set()
        with contextlib.suppress(Exception):
            await asyncio.wait({future}, timeout=CANCEL_GRACE_S)
        if future.done() and not future.cancelled():
            future.exception()  # retrieved: no 'exception was never retrieved' noise
        else:
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
        raise
