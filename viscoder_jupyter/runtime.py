"""Process-wide pieces: a background event loop, and the warm child kernel on it.

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
from typing import TYPE_CHECKING, Any, Coroutine

if TYPE_CHECKING:
    from .child.executor import ChildKernel

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_kernel: "ChildKernel | None" = None
_kernel_locks: "weakref.WeakKeyDictionary[ChildKernel, asyncio.Lock]" = weakref.WeakKeyDictionary()


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


def child_kernel(settings: Any = None) -> "ChildKernel":
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
    return {"sandbox": settings.sandbox, "memory_limit_mb": settings.memory_limit_mb,
            "cpu_time_limit_s": settings.cpu_time_limit_s}


def kernel_lock(kernel: "ChildKernel") -> asyncio.Lock:
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
