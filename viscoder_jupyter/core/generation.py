"""One reply of the model, within the attempt's time budget and stopped when it loops.

`generate` runs the backend's generation as a task and cancels it when the budget
(settings.attempt_budget) is spent or the streamed text repeats itself (RepetitionWatcher);
every backend turns that cancellation into stopping its generation within a token (llama.cpp,
transformers) or closing its stream (a server). The loop then fails the attempt, or runs the code
written before the loop began.
"""

from __future__ import annotations

import asyncio
import time

from ..backends.base import Reply
from ..backends.streaming import RepetitionWatcher

OVER_BUDGET = "budget"


async def prompt_size(backend, messages) -> tuple[int | None, int | None]:
    """(prompt tokens, tokens not read before) where the backend can count them: the live view
    says "reading a prompt of N tokens" instead of nothing while a long prompt is read."""
    measure = getattr(backend, "async_prompt_size", None)
    if measure is None:
        return None, None
    try:
        return (await measure(messages)) or (None, None)
    except Exception:  # noqa: BLE001 - only words for the view; the generation reports real failures
        return None, None


async def generate(
    backend, messages, sampling, budget: float, started: float, on_text, *, stop_loops: bool = True
) -> tuple[Reply, str]:
    """The backend's reply and why it was stopped: "" (the model finished), OVER_BUDGET (still
    writing when `budget` seconds from `started` were spent) or, with `stop_loops`, what it repeated
    (a reply in a loop, streaming.RepetitionWatcher: its text ends after the loop's first copy).

    Stopping is cancelling the backend's coroutine, which every backend turns into stopping its
    generation within a token (llama.cpp, transformers) or closing the stream (a server).
    """
    loop = asyncio.get_running_loop()
    watcher = RepetitionWatcher()
    pieces: list[str] = []
    looping = asyncio.Event()

    def streamed(text: str) -> None:  # on the backend's thread
        if watcher.looping:
            return  # the stop is on its way: what comes after the loop is not shown
        pieces.append(text)
        on_text(text)
        if stop_loops and watcher.feed(text):
            loop.call_soon_threadsafe(looping.set)

    if sampling is None:  # backends written before sampling existed take two arguments
        task = asyncio.ensure_future(backend.async_generate(messages, streamed))
    else:
        task = asyncio.ensure_future(backend.async_generate(messages, streamed, sampling=sampling))
    stop = asyncio.ensure_future(looping.wait())
    timeout = max(0.0, budget - (time.perf_counter() - started)) if budget > 0 else None
    over = False
    try:
        await asyncio.wait({task, stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        over = not task.done() and not looping.is_set()
    finally:  # whether stopped here or cancelled from outside, the backend stops before we go on
        stop.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
    if task.cancelled() or task.exception() is not None:
        if not (watcher.looping or task.cancelled()):
            task.result()  # the backend's own failure
        reply = Reply(text="".join(pieces), completion_tokens=len(pieces))
    else:
        reply = task.result()
    if watcher.looping:
        kept = f"`{watcher.repeated}` came {watcher.copies} times running"
        return Reply(watcher.kept, reply.prompt_tokens, len(pieces), reply.seconds), f"it repeated itself: {kept}"
    return reply, OVER_BUDGET if over else ""
