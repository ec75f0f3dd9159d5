"""The self-debug loop: prompt, generate, run in the child kernel, feed errors back.

Front ends pass `on_event` to render progress; this module knows nothing of
IPython or the browser.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from . import session
from .backends import Backend, get_backend
from .codeblocks import extract_code, prepare_code
from .context import describe_frames
from .errors import BackendFailed, NoCodeInReply, NoFigure, RequestError, ViscoderError
from .events import Attempt, AttemptFinished, AttemptStarted, Done, Event, PlotResult, Status, TextStreamed
from .frames import check_frames
from .prompt import feedback_turn, first_turn
from .settings import VisCoder

OnEvent = Callable[[Event], None]


async def async_run(
    request: str,
    frames: dict[str, Any],
    settings: VisCoder,
    on_event: OnEvent | None = None,
    *,
    backend: Backend | None = None,
    kernel=None,
    messages: list[dict[str, str]] | None = None,
    prepare: Callable[[str, list[str]], str] = prepare_code,
) -> PlotResult:
    """Turn a request into working plotting code, or report every failed attempt.

    `messages` replaces the default first turn (a fix request, the benchmark's own
    prompt); `prepare` turns extracted code into what runs (default: point data
    loading at the live frames and add the usual imports).
    """
    if not request or not request.strip():
        raise RequestError("The request is empty: describe the plot you want, e.g. 'bar chart of sales by region'.")
    frames = check_frames(frames)
    emit = on_event or (lambda event: None)
    backend = backend or get_backend(settings)
    kernel = kernel or session.child_kernel(settings)  # its sandbox and limits
    if messages is None:
        messages = first_turn(request, describe_frames(frames, settings.frame_budget), settings.lib)
    messages = list(messages)
    attempts: list[Attempt] = []
    total = settings.retries + 1

    emit(Status("preparing the model and the child kernel"))
    # Weights load while the child kernel starts; attempt timings then exclude both.
    started = time.perf_counter()
    await asyncio.gather(backend.async_prepare(), kernel.async_start())
    prepare_seconds = time.perf_counter() - started
    async with session.kernel_lock(kernel):
        await kernel.async_load_frames(frames)
        for number in range(1, total + 1):
            emit(AttemptStarted(number, total))
            attempt = await _attempt(number, messages, frames, settings, backend, kernel, emit, prepare)
            attempts.append(attempt)
            emit(AttemptFinished(attempt))
            if attempt.ok:
                break
            messages += feedback_turn(attempt.code or attempt.reply, attempt.error, number)

    result = PlotResult(request=request, attempts=attempts, prepare_seconds=prepare_seconds)
    emit(Done(result))
    return result


async def _attempt(number, messages, frames, settings, backend, kernel, emit, prepare) -> Attempt:
    started = time.perf_counter()
    try:
        reply = await backend.async_generate(messages, lambda text: emit(TextStreamed(number, text)))
    except ViscoderError:
        raise
    except Exception as exc:  # not the code's fault: stop the request with one clear line
        raise BackendFailed(
            f"The {settings.backend} backend failed while writing attempt {number}: "
            f"{type(exc).__name__}: {exc}. Nothing was inserted; run the cell again to retry."
        ) from exc
    attempt = Attempt(
        number=number,
        reply=reply.text,
        code="",
        generate_seconds=time.perf_counter() - started,
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
    )
    code = extract_code(reply.text)
    if code is None:
        attempt.error = NoCodeInReply()
        return attempt
    attempt.code = prepare(code, list(frames))
    outcome = await kernel.async_run(attempt.code, settings.timeout)  # cancelling it interrupts the child
    attempt.execute_seconds = outcome.seconds
    attempt.images = outcome.images
    attempt.plotly_json = outcome.plotly_json
    attempt.stdout = outcome.stdout
    attempt.error = outcome.error or (None if outcome.has_figure else NoFigure())
    return attempt


def run(request: str, frames: dict[str, Any], settings: VisCoder, on_event: OnEvent | None = None, **kw) -> PlotResult:
    """Synchronous `async_run`, safe to call inside a running kernel."""
    return session.run_sync(async_run(request, frames, settings, on_event, **kw))
