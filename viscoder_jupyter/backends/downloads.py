"""Model downloads the user can watch and stop: huggingface_hub's own progress hooks turned
into `DownloadProgress` events, and a cancel flag its progress updates obey.

huggingface_hub's `hf_hub_download` and `snapshot_download` take a `tqdm_class`; `ProgressBar`
is one that draws nothing and reports to the watch of the request that asked for the model
(a context variable, so the download thread knows its request). The loop opens the watch
around `Backend.async_prepare` (`watching`); when the request is cancelled, the next progress
update raises `DownloadCancelled` in the download thread, which huggingface_hub lets through:
its partial ``.incomplete`` file stays, and the next request resumes from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import io
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from ..core.events import DownloadProgress

#: At most this many progress events a second (the last one, at 100%, always goes out).
REPORTS_PER_SECOND = 4
#: The rate is measured over this many seconds of the most recent progress.
RATE_WINDOW_S = 5.0


class DownloadCancelled(Exception):
    """The request that asked for this download was cancelled (raised in the download thread)."""


@dataclass
class DownloadWatch:
    """What one request's downloads report to, and the flag that stops them."""

    on_progress: Callable[[DownloadProgress], None] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    what: str = ""
    _bars: list = field(default_factory=list)
    _samples: deque = field(default_factory=lambda: deque(maxlen=64))
    _reported_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def progress(self) -> tuple[int, int | None]:
        """(bytes done, bytes total) over the byte bars open now. snapshot_download keeps two
        bars over the same bytes (received and written), hence the largest, not the sum."""
        byte_bars = [b for b in self._bars if getattr(b, "unit", "") == "B"]
        done = max((int(b.n) for b in byte_bars), default=0)
        totals = [int(b.total) for b in byte_bars if b.total]
        return done, (max(totals) if totals else None)

    def report(self, force: bool = False) -> None:
        if self.cancel.is_set():
            raise DownloadCancelled(f"download of {self.what or 'the model'} cancelled")
        now = time.monotonic()
        with self._lock:
            done, total = self.progress()
            self._samples.append((now, done))
            finished = total is not None and done >= total
            if not (force or finished) and now - self._reported_at < 1 / REPORTS_PER_SECOND:
                return
            self._reported_at = now
            rate = self._rate(now)
        if self.on_progress is None:
            return
        eta = (total - done) / rate if rate and total is not None and total >= done else None
        self.on_progress(DownloadProgress(self.what, done, total, rate, eta, done=finished))

    def _rate(self, now: float) -> float | None:
        recent = [(t, n) for t, n in self._samples if now - t <= RATE_WINDOW_S]
        if len(recent) < 2 or recent[-1][0] - recent[0][0] < 0.2:
            return None
        return max(0.0, (recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0]))


_watch: contextvars.ContextVar[DownloadWatch | None] = contextvars.ContextVar("viscoder_download", default=None)


class ProgressBar(tqdm):
    """A tqdm that draws nothing (no bars in the kernel's stderr) and reports to the current
    request's watch; an update after the request was cancelled raises `DownloadCancelled`."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.pop("name", None)  # huggingface_hub's own tqdm takes a name; plain tqdm does not
        kwargs["file"] = io.StringIO()
        kwargs["disable"] = False  # n must count even where no terminal is attached
        self._watch = _watch.get()
        super().__init__(*args, **kwargs)
        if self._watch is not None:
            with self._watch._lock:
                self._watch._bars.append(self)
            self._watch.report(force=True)

    def update(self, n: float | None = 1) -> bool | None:
        shown = super().update(n)
        if self._watch is not None:
            self._watch.report()
        return shown

    def close(self) -> None:
        super().close()
        watch = self._watch
        if watch is not None:
            with watch._lock:
                if self in watch._bars and getattr(self, "unit", "") != "B":
                    watch._bars.remove(self)

    def display(self, *args: Any, **kwargs: Any) -> bool:
        return True


def current_watch() -> DownloadWatch | None:
    return _watch.get()


def describe(what: str) -> None:
    """Name the download the current watch reports (a hub id, REPO:FILE)."""
    watch = _watch.get()
    if watch is not None:
        watch.what = what


def check_cancelled() -> None:
    """Raise `DownloadCancelled` if the request behind this thread's download was cancelled."""
    watch = _watch.get()
    if watch is not None and watch.cancel.is_set():
        raise DownloadCancelled(f"download of {watch.what or 'the model'} cancelled")


async def watching(work: Awaitable[Any], on_progress: Callable[[DownloadProgress], None] | None) -> Any:
    """Await `work` (a backend's `async_prepare`) with its downloads reporting to `on_progress`;
    cancelling this coroutine stops them at their next progress update.

    The watch is a context variable: `asyncio.to_thread` carries it into the worker thread;
    an executor does not, so a backend that uses one runs its work in `copy_context()`.
    """
    watch = DownloadWatch(on_progress)
    token = _watch.set(watch)
    try:
        task = asyncio.ensure_future(work)  # a task copies the context now, with the watch in it
    finally:
        _watch.reset(token)
    try:
        return await task
    except asyncio.CancelledError:
        watch.cancel.set()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise
