"""`generate_plot`: the loop as a plain Python call, no IPython needed."""

from __future__ import annotations

import queue
import sys
import warnings
from collections.abc import Mapping
from typing import Any

from .. import runtime
from ..core.errors import RequestError
from ..core.events import Notice, PlotResult
from ..core.settings import VisCoder, sandbox_mode


def _as_named_frames(frames: Any) -> dict[str, Any]:
    import pandas as pd

    if isinstance(frames, pd.DataFrame):
        return {"df": frames}
    if isinstance(frames, Mapping):
        return dict(frames)
    raise RequestError(f"frames must be a DataFrame or a dict of name to DataFrame, not {type(frames).__name__}.")


async def async_generate_plot(
    frames, request: str, *, on_event=None, settings: VisCoder | None = None, **options
) -> PlotResult:
    """Async twin of `generate_plot`; must run on `runtime.event_loop()` when using the shared kernel."""
    job = runtime.plot_job(request, settings or VisCoder(), frames=_as_named_frames(frames), overrides=options)
    return await runtime.async_run_job(job, on_event)


def generate_plot(frames, request: str, *, on_event=None, settings: VisCoder | None = None, **options) -> PlotResult:
    """Ask the model for a plot of `frames` and return the first code that draws one.

    frames: a DataFrame (named `df` in the code) or a dict of name to DataFrame.
    options: any `VisCoder` setting, e.g. lib="seaborn", retries=1, backend="replay", model="path".
    The result has `.ok`, `.code`, `.images` (PNG bytes), `.attempts`, `.findings` (what the review
    flagged in `.code`: read it before running the code) and `.sandboxed` (whether the code ran in
    the sandbox). What the user should know comes as a `UserWarning` at the caller's line, at every
    call: the code ran without the sandbox, the review flagged lines of it, a frame too wide to
    show whole.
    """
    caller = sys._getframe(1)
    job = runtime.plot_job(request, settings or VisCoder(), frames=_as_named_frames(frames), overrides=options)
    notices: queue.SimpleQueue[str | None] = queue.SimpleQueue()

    def hear(event) -> None:  # on the loop's thread
        if isinstance(event, Notice):
            notices.put(event.message)
        if on_event is not None:
            on_event(event)

    future = runtime.submit(runtime.async_run_job(job, hear))
    future.add_done_callback(lambda _: notices.put(None))
    try:
        # Warned from the caller's thread, at the caller's line, while the run goes on.
        for message in iter(notices.get, None):
            warn_every_time(message, caller)
        result = future.result()
    except KeyboardInterrupt:
        runtime.cancel_and_wait(future)
        raise
    if result.sandboxed is False and sandbox_mode(job.settings.sandbox) == "off":  # 'auto' gave a notice above
        warn_every_time(
            "the code ran without the sandbox (sandbox = 'off'): it could read your files and reach the network",
            caller,
        )
    if result.findings:
        warn_every_time(findings_text(result.findings), caller)
    return result


def findings_text(findings) -> str:
    lines = "; ".join(f"line {f.line}: {f.text.strip()} ({f.why})" for f in findings[:3])
    more = f"; and {len(findings) - 3} more" if len(findings) > 3 else ""
    count = "1 line" if len(findings) == 1 else f"{len(findings)} lines"
    return (
        f"the review flagged {count} of result.code that plotting code never needs: {lines}{more}. "
        "Read the code before you run it (result.findings lists them)."
    )


def warn_every_time(message: str, frame) -> None:
    """A UserWarning at `frame`'s line, at every call. `warnings.warn` says a warning once per line
    under Python's default filter (the calling module's registry remembers it), so a loop over
    `generate_plot` would hear of the second unsandboxed run or flagged code from no one; a registry
    of its own for each warning keeps that from happening, and the user's own filters ('ignore',
    'error', 'once') still apply."""
    warnings.warn_explicit(
        f"VisCoder: {message}",
        UserWarning,
        frame.f_code.co_filename,
        frame.f_lineno,
        module=frame.f_globals.get("__name__", "<string>"),
        registry=None,
        module_globals=frame.f_globals,
    )
