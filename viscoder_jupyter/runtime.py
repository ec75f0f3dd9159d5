"""The one request seam: every front end validates and runs its request here.

It checks a request once (the text, the frames, the settings' overrides, the backend)
and owns what the process shares: a background event loop, the warm child kernel on
it, and the lock that gives that kernel to one request at a time. `core.loop` gets the
kernel and the backend as arguments.

Everything async runs on one loop in a daemon thread, so the child kernel's
sockets always live on the loop that made them, and callers in a busy kernel
(whose own loop is running) can still wait on a plain future.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import threading
import weakref
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .core.errors import NoFrames, RequestError
from .core.frames import check_frames, frames_for_code, select_frames

if TYPE_CHECKING:
    from .child.executor import ChildKernel
    from .core.events import PlotResult
    from .core.settings import VisCoder

EMPTY_REQUEST = "The request is empty: describe the plot you want, e.g. 'bar chart of sales by region'."
EMPTY_CELL = "The cell is empty: there is no code to fix."

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_kernel: ChildKernel | None = None
_kernel_locks: weakref.WeakKeyDictionary[ChildKernel, asyncio.Lock] = weakref.WeakKeyDictionary()


def event_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="viscoder-loop", daemon=True).start()
        return _loop


def submit(coro: Coroutine) -> concurrent.futures.Future:
    """Schedule a coroutine on the background loop."""
    return asyncio.run_coroutine_threadsafe(coro, event_loop())


def run_sync(coro: Coroutine) -> Any:
    """Run a coroutine on the background loop and wait; Ctrl-C cancels it."""
    future = submit(coro)
    try:
        return future.result()
    except KeyboardInterrupt:
        cancel_and_wait(future)
        raise


def cancel_and_wait(future: concurrent.futures.Future, seconds: float = 5.0) -> None:
    """Cancel, then give the coroutine's cleanup (interrupting the child) time to finish."""
    future.cancel()
    try:
        future.result(timeout=seconds)
    except BaseException:  # CancelledError, the timeout, or what the cleanup raised
        pass


def child_kernel(settings: Any = None) -> ChildKernel:
    """The process's warm child kernel (created on first use, started lazily).

    `settings` (a `VisCoder`) gives its sandbox and limits; changed ones replace the
    running kernel before its next attempt.
    """
    global _kernel
    with _lock:
        if _kernel is None:
            from .child.executor import ChildKernel

            _kernel = ChildKernel(**_limits(settings)) if settings is not None else ChildKernel()
            atexit.register(_kernel.shutdown_now)
        elif settings is not None:
            _kernel.configure(**_limits(settings))
        return _kernel


def _limits(settings: Any) -> dict:
    from .core.settings import sandbox_mode

    return {
        # VISCODER_REQUIRE_SANDBOX=1 (even set after the kernel started) makes it 'required': a
        # kernel that runs without the sandbox is then replaced before the next attempt, and refused.
        "sandbox": sandbox_mode(settings.sandbox),
        "memory_limit_mb": settings.memory_limit_mb,
        "cpu_time_limit_s": settings.cpu_time_limit_s,
    }


def kernel_lock(kernel: ChildKernel) -> asyncio.Lock:
    """One request at a time uses a child kernel (frames are per request). Loop thread only."""
    if kernel not in _kernel_locks:
        _kernel_locks[kernel] = asyncio.Lock()
    return _kernel_locks[kernel]


def warm_up(settings: Any = None) -> concurrent.futures.Future:
    """Start the child kernel in the background; `%load_ext` returns at once."""
    return submit(child_kernel(settings).async_start())


def shutdown() -> None:
    """Stop the child kernel (used when the extension is unloaded)."""
    global _kernel
    with _lock:
        kernel, _kernel = _kernel, None
    if kernel is not None:
        try:
            submit(kernel.async_shutdown()).result(timeout=10)
        except Exception:
            kernel.shutdown_now()


# ---- requests: checked once, then run by the loop --------------------------------------------
@dataclass
class Job:
    """A checked request, ready for the loop: what is asked, on which frames, with which settings.

    `fix` (source, traceback, note) makes the user's code and its error the first turn.
    `origin` names the front end in the dialogue log (settings.collect), which sets `record_id`
    when it has logged the request (before the front ends hear it is done).
    """

    request: str
    frames: dict[str, Any]
    settings: VisCoder
    fix: tuple[str, str, str] | None = None
    origin: str = ""
    record_id: str | None = None


def settings_for(settings: VisCoder, overrides: Mapping[str, Any] | None = None) -> VisCoder:
    """The settings with a front end's overrides applied; an unknown backend is refused here,
    before any view."""
    from .backends import backend_class

    if overrides:
        settings = settings.with_overrides(**overrides)
    backend_class(settings.backend)
    return settings


def plot_job(
    request: str,
    settings: VisCoder,
    *,
    frames: Mapping[str, Any] | None = None,
    namespace: Mapping[str, Any] | None = None,
    names: Sequence[str] = (),
    overrides: Mapping[str, Any] | None = None,
    empty: str = EMPTY_REQUEST,
) -> Job:
    """A plot from words: the request, then its frames (given, or chosen from `namespace` by
    `names` and the request's words), then the settings. `empty` says what to write instead."""
    if not request or not request.strip():
        raise RequestError(empty)
    chosen = select_frames(namespace, list(names), request) if namespace is not None else check_frames(frames or {})
    return Job(request, chosen, settings_for(settings, overrides))


def fix_job(
    source: str,
    traceback: str,
    note: str,
    settings: VisCoder,
    *,
    frames: Mapping[str, Any] | None = None,
    namespace: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Job:
    """A fix of the user's code: the settings, the code, something to fix (an error or a note),
    then the frames the code names (from `namespace`), whose absence is `NoFrames`."""
    from .core.fix import check_fixable, request_text

    settings = settings_for(settings, overrides)
    if not source.strip():
        raise RequestError(EMPTY_CELL)
    check_fixable(traceback, note)
    if namespace is not None:
        try:
            frames = frames_for_code(namespace, source)
        except RequestError as exc:
            raise NoFrames(str(exc)) from None
    return Job(request_text(source, note), check_frames(frames or {}), settings, fix=(source, traceback, note))


async def async_run_job(job: Job, on_event=None, *, backend=None, kernel=None, **kw) -> PlotResult:
    """Run a checked request on this loop: the process's backend and warm kernel unless given."""
    from .backends import get_backend
    from .core import loop

    if backend is None:
        backend = get_backend(job.settings)
        if on_event is not None and backend.name in ("transformers", "llamacpp"):
            from .backends.machine import take_choice_notice
            from .core.events import Notice

            # No model configured: which one this machine gets and why, before it downloads (once).
            if note := take_choice_notice(job.settings.model):
                on_event(Notice(note))
    kernel = kernel or child_kernel(job.settings)  # its sandbox and limits
    if job.fix is not None and kw.get("messages") is None:
        from .core.context import describe_frames
        from .core.fix import fix_messages

        source, traceback, note = job.fix
        kw["messages"] = fix_messages(
            source, traceback, note, describe_frames(job.frames, job.settings.frame_budget), job.settings.lib
        )
    if job.settings.collect:  # the conversation as the backend receives it, logged when the request ends
        from .core.dialogue_log import DialogueRecorder

        origin = job.origin or ("fix" if job.fix else "api")
        recorder = DialogueRecorder(
            job.request, job.frames, job.settings, origin, lambda i: setattr(job, "record_id", i)
        )
        backend, on_event = recorder.backend(backend), recorder.events(on_event)
    result = await loop.async_run(
        job.request, job.frames, job.settings, on_event, backend=backend, kernel=kernel, lock=kernel_lock(kernel), **kw
    )
    result.sandboxed = getattr(kernel, "sandboxed", None)
    return result


def start(job: Job, on_event=None) -> concurrent.futures.Future:
    """Run a checked request on the background loop; the future holds its `PlotResult`."""
    return submit(async_run_job(job, on_event))


async def async_run(request: str, frames: dict[str, Any], settings: VisCoder, on_event=None, **kw) -> PlotResult:
    """Check and run a request on this loop (the background loop when the shared kernel is used).

    `kw` reaches `core.loop.async_run`: `backend`, `kernel`, and another harness's
    `messages`, `prepare`, `extract` or `feedback`.
    """
    return await async_run_job(plot_job(request, settings, frames=frames), on_event, **kw)


def run(request: str, frames: dict[str, Any], settings: VisCoder, on_event=None, **kw) -> PlotResult:
    """Synchronous `async_run`, safe to call inside a running kernel."""
    return run_sync(async_run(request, frames, settings, on_event, **kw))


async def async_fix(
    source: str, traceback: str, note: str, frames: dict[str, Any], settings: VisCoder, on_event=None, **kw
) -> PlotResult:
    """Run the self-debug loop from the user's code and its traceback (or a note)."""
    return await async_run_job(fix_job(source, traceback, note, settings, frames=frames), on_event, **kw)
