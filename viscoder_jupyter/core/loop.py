"""The self-debug loop: prompt, generate, run in the child kernel, feed errors back.

Front ends pass `on_event` to render progress; this module knows nothing of
IPython or the browser, nor which kernel and backend are shared: `runtime` validates
the request and passes them in.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from ..backends.base import Backend, Sampling
from ..backends.downloads import watching
from .checks import empty_problem, flawed_problem, quality_problem
from .code_review import FlaggedCode, review_code
from .codeblocks import extract_code, repair_code
from .context import describe_frames, wide_frame_notes
from .error_facts import error_facts
from .errors import (
    AttemptError,
    BackendFailed,
    ContextFull,
    NoCodeInReply,
    NoFigure,
    PromptOverBudget,
    ReplyOverBudget,
    ViscoderError,
)
from .events import (
    Attempt,
    AttemptFinished,
    AttemptStarted,
    CodeWritten,
    Done,
    Event,
    Notice,
    PlotResult,
    ReplyStarted,
    Status,
    TextStreamed,
)
from .feedback import data_hints
from .generation import OVER_BUDGET, generate, prompt_size
from .prompt import feedback_turn, first_turn, fresh_start
from .request_checks import check_request
from .settings import VisCoder
from .verified import unsent_misses

OnEvent = Callable[[Event], None]


async def async_run(
    request: str,
    frames: dict[str, Any],
    settings: VisCoder,
    on_event: OnEvent | None = None,
    *,
    backend: Backend,
    kernel,
    lock: contextlib.AbstractAsyncContextManager | None = None,
    messages: list[dict[str, str]] | None = None,
    prepare: Callable[[str, list[str]], str] | None = None,
    extract: Callable[[str], str | None] | None = None,
    feedback: Callable[[list[dict[str, str]], list[Attempt]], list[dict[str, str]]] | None = None,
    judge: bool = True,
) -> PlotResult:
    """Turn a request into working plotting code, or report every failed attempt.

    The request and frames come checked (`runtime` does it); `kernel` runs the code
    (a `child.executor.ChildKernel`), held through `lock` while the frames are loaded and
    the attempts run. `messages` replaces the default first turn (a fix request, the benchmark's own
    prompt); `extract` replaces finding the code in a reply (None: no code), `prepare` the
    repairs (settings.repairs) that turn extracted code into what runs, and `feedback` the
    whole conversation sent after failed attempts (opening, attempts so far): another
    harness's protocol, reproduced exactly. `judge=False` takes that harness's verdict too: only
    an error or a missing figure fails an attempt (nothing of ours judges code that drew, `_judged`).
    """
    emit = on_loop_thread(on_event) if on_event else (lambda event: None)
    if messages is None:
        messages = first_turn(request, describe_frames(frames, settings.frame_budget), settings.lib)
    messages = list(messages)
    opening = list(messages)  # the request alone, before any failed code
    attempts: list[Attempt] = []
    total = settings.retries + 1

    for note in wide_frame_notes(frames, settings.frame_budget):
        emit(Notice(note))
    emit(Status("preparing the model and the child kernel"))
    # Weights load while the child kernel starts; attempt timings then exclude both.
    started = time.perf_counter()
    # A model download reports its progress; cancelling the request stops it (downloads.py).
    await asyncio.gather(watching(backend.async_prepare(), emit), kernel.async_start())
    prepare_seconds = time.perf_counter() - started
    for note in getattr(kernel, "take_notices", list)():  # e.g. running without the sandbox
        emit(Notice(note))
    async with lock or contextlib.nullcontext():
        await kernel.async_load_frames(frames)
        for number in range(1, total + 1):
            emit(AttemptStarted(number, total))
            try:
                if settings.samples and len(attempts) >= 2 and _same_failure(*attempts[-2:]):
                    # Sampled from the opening, not the history: with its failed code in view the model
                    # copies it, sampled or not; the error is named so it is not walked into again.
                    attempt = await _sampled_attempt(
                        number,
                        request,
                        fresh_start(opening, attempts[-1].error),
                        frames,
                        settings,
                        backend,
                        kernel,
                        emit,
                        prepare,
                        judge,
                    )
                else:
                    attempt = await _attempt(
                        number, request, messages, frames, settings, backend, kernel, emit, prepare, extract, judge
                    )
            except ContextFull:
                if not attempts:
                    raise
                emit(
                    Notice(
                        f"self-debug stopped after attempt {len(attempts)}: the conversation with the "
                        "failed attempts no longer fits the model's context"
                    )
                )
                break
            attempts.append(attempt)
            emit(AttemptFinished(attempt))
            if attempt.ok:
                if judge and number < total and (note := unsent_misses(request, attempt, frames, settings)):
                    emit(Notice(f"stopped after attempt {number} of {total}: {note}"))
                break
            if _check_keeps_failing(attempts):
                emit(
                    Notice(
                        f"stopped after attempt {number} of {total}: two figures in a row failed the same check "
                        f"({attempt.error.one_line()}); the figure is kept"
                    )
                )
                break
            if feedback is not None:
                messages = feedback(opening, attempts)
                continue
            hints = data_hints(attempt.error, attempt.code, frames) if settings.data_feedback else ""
            facts = error_facts(attempt, settings.max_new_tokens) if settings.runtime_facts else ""
            messages += feedback_turn(attempt.code or attempt.reply, attempt.error, number, hints, facts)
            if attempt.stopped:  # the model should know its reply looped, or greedy decoding loops again
                turn = messages[-1]
                note = f"\n\nYour reply was stopped: {attempt.stopped}. Write each line once."
                messages[-1] = {**turn, "content": turn["content"] + note}

    result = PlotResult(request=request, attempts=attempts, prepare_seconds=prepare_seconds)
    emit(Done(result))
    return result


def on_loop_thread(on_event: OnEvent) -> OnEvent:
    """`on_event`, always called on the running loop's thread.

    Backends may produce text on a worker thread (transformers, llama.cpp); front ends may
    then touch loop-bound things (timers, comms, widgets), so events are handed over with
    the loop's thread-safe call. Order is kept: a worker's result reaches the loop through
    the same queue, after the text it streamed.
    """
    loop = asyncio.get_running_loop()
    owner = threading.get_ident()

    def emit(event: Event) -> None:
        if threading.get_ident() == owner:
            on_event(event)
        else:
            loop.call_soon_threadsafe(on_event, event)

    return emit


def _same_failure(before: Attempt, last: Attempt) -> bool:
    """Greedy decoding is stuck: the same code again, or the same error, and no figure at all
    (a figure that only fails a check is not worth the candidates' time)."""
    return (
        not before.drew
        and not last.drew
        and (before.code == last.code or before.error.one_line() == last.error.one_line())
    )


def _check_keeps_failing(attempts: list[Attempt]) -> bool:
    """Two figures in a row fail the same check: more rounds cost the model's time and, as
    measured, bring the same figure again; the figure is kept as the answer."""
    if len(attempts) < 2:
        return False
    before, last = attempts[-2:]
    return (
        before.drew and last.drew and not before.ok and not last.ok and before.error.one_line() == last.error.one_line()
    )


async def _sampled_attempt(
    number, request, messages, frames, settings, backend, kernel, emit, prepare, judge
) -> Attempt:
    """Up to `settings.samples` sampled candidates, run one by one; the first that works is the attempt."""
    tried: list[Attempt] = []
    for k in range(settings.samples):
        emit(Status(f"greedy retries repeat themselves: sampled candidate {k + 1} of {settings.samples}"))
        candidate = await _attempt(
            number,
            request,
            messages,
            frames,
            settings,
            backend,
            kernel,
            emit,
            prepare,
            judge=judge,
            sampling=Sampling(seed=1000 * number + k),
        )
        tried.append(candidate)
        if candidate.drew:
            break
    chosen = tried[-1]
    chosen.candidates = len(tried)
    chosen.generate_seconds = sum(c.generate_seconds for c in tried)
    chosen.execute_seconds = sum(c.execute_seconds for c in tried)
    chosen.completion_tokens = sum(c.completion_tokens for c in tried)
    return chosen


async def _attempt(
    number,
    request,
    messages,
    frames,
    settings,
    backend,
    kernel,
    emit,
    prepare,
    extract=None,
    judge: bool = True,
    sampling: Sampling | None = None,
) -> Attempt:
    started = time.perf_counter()
    # An earlier attempt ran: this one runs in a fresh kernel, readied while the model writes.
    getattr(kernel, "next_attempt", lambda: None)()
    prompt_tokens, new_tokens = await prompt_size(backend, messages)
    budget = float(getattr(settings, "attempt_budget", 0) or 0)
    emit(ReplyStarted(number, prompt_tokens, new_tokens, budget))
    try:
        # Another harness's protocol (judge=False) is reproduced as it is: no reply is cut short there.
        reply, why = await generate(
            backend,
            messages,
            sampling,
            budget,
            started,
            lambda text: emit(TextStreamed(number, text)),
            stop_loops=judge and settings.stop_repeats,
        )
    except ViscoderError:
        raise
    except Exception as exc:  # not the code's fault: stop the request with one clear line
        raise BackendFailed(
            f"The {settings.backend} backend failed while writing attempt {number}: "
            f"{type(exc).__name__}: {exc}. Nothing was inserted."
        ) from exc
    attempt = Attempt(
        number=number,
        reply=reply.text,
        code="",
        generate_seconds=reply.seconds if reply.seconds is not None else time.perf_counter() - started,
        prompt_tokens=reply.prompt_tokens or prompt_tokens or 0,
        completion_tokens=reply.completion_tokens,
        stopped=why if why != OVER_BUDGET else "",
    )
    if why == OVER_BUDGET:  # cut mid-way: the code is unfinished, and the model must write less
        if not reply.completion_tokens:
            raise PromptOverBudget(budget, prompt_tokens)
        attempt.error = ReplyOverBudget(budget, reply.completion_tokens)
        return attempt
    code = (extract or extract_code)(reply.text)
    if code is None:
        attempt.error = NoCodeInReply()
        return attempt
    if prepare is not None:
        attempt.code = prepare(code, list(frames))
    else:  # with repairs off, still the frame reads the prompt asks for (the harness drops them too)
        attempt.code, attempt.repairs = repair_code(code, list(frames), only_frame_reads=not settings.repairs)
    if why:  # a loop was cut: the code up to it may still draw, and the user sees why it ends there
        attempt.repairs.insert(0, f"stopped the reply: {why}; the code up to there was kept")
    emit(CodeWritten(number, attempt.code))
    # for the user, before the code reaches their kernel; the frames are the names it may read unset
    attempt.findings = review_code(attempt.code, frames)
    outcome = await kernel.async_run(attempt.code, settings.timeout)  # cancelling it interrupts the child
    attempt.execute_seconds = outcome.seconds
    attempt.images = outcome.images
    attempt.plotly_json = outcome.plotly_json
    attempt.stdout = outcome.stdout
    attempt.figure_facts = outcome.figure_facts
    if outcome.error or not outcome.has_figure:
        attempt.error = outcome.error or NoFigure()
    elif judge:
        attempt.error = _judged(request, attempt, outcome, frames, settings)
    return attempt


def _columns(frames) -> list[str]:
    return [c for df in frames.values() for c in getattr(df, "columns", []) if isinstance(c, str)]


def _judged(request, attempt, outcome, frames, settings) -> AttemptError | None:
    """Why code that drew is not yet the answer, or None. Whatever the settings: flagged code (a
    clean version should come first), a changed frame (code that would change the user's data is
    never the answer), a figure with nothing drawn or drawn wrongly (bars over each other, a
    zig-zag line, an empty legend: checks.flawed_problem). With `checks`, the figure's quality and, with
    `request_checks`, the request's words: off by default, as they gained nothing on the 0.5B model."""
    if attempt.findings:
        return FlaggedCode(attempt.findings, settings.lib)
    problem = (
        getattr(outcome, "frames_changed", None)
        or empty_problem(outcome.figure_facts, outcome.plotly_json)
        or flawed_problem(outcome.figure_facts, attempt.code, request, _columns(frames))
    )
    if problem is None and settings.checks:
        problem = quality_problem(outcome.figure_facts, request)
        if problem is None and settings.request_checks:
            problem = check_request(request, attempt.code, frames, outcome.figure_facts, outcome.plotly_json)
    return problem
