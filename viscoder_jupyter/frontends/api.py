"""`generate_plot`: the loop as a plain Python call, no IPython needed."""

from __future__ import annotations

import queue
import warnings
from collections.abc import Mapping
from typing import Any

from .. import runtime
from ..core.errors import RequestError
from ..core.events import Notice, PlotResult
from ..core.settings import VisCoder


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
    The result has `.ok`, `.code`, `.images` (PNG bytes) and `.attempts`. What the user should
    know before it runs (the code runs without the sandbox, a frame too wide to show whole)
    comes as a `UserWarning` as soon as it is known.
    """
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
            warnings.warn(f"VisCoder: {message}", UserWarning, stacklevel=2)
        return future.result()
    except KeyboardInterrupt:
        runtime.cancel_and_wait(future)
        raise
