"""Fixing plotting code the user already has: the first turn, and which cell to fix.

The loop is the one `%%viscoder` uses; only the first turn differs. The user's code
goes in as the assistant's earlier reply and the traceback (or what looks wrong) as
the user's report, the error-correction dialogue VisCoder was trained on, so every
later round is the ordinary feedback turn.
"""
from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import RequestError, strip_ansi
from ..core.frames import check_frames, frames_in

TRACEBACK_CAP = 6000  # characters of a traceback the model reads (the end: where the error is)

# What a cell that draws looks like; `%viscoder_fix <note>` with no failed cell fixes the latest.
_PLOTTING = re.compile(
    r"\b(?:plt|sns|px|go|ax|axes|fig|matplotlib|seaborn|plotly)\b\s*\.|\.plot\b|\.(?:hist|boxplot|scatter|bar|barh)\s*\(|"
    r"^\s*(?:import|from)\s+(?:matplotlib|seaborn|plotly)",
    re.MULTILINE,
)
_VISCODER_CELL = re.compile(r"^\s*%%?viscoder", re.MULTILINE)

DEFAULT_INTENT = "the plot that the code below is meant to draw"
FIX_NOTE = (
    "The above code runs, but the plot is not right: {note}\n"
    "Please provide a corrected version enclosed in ```python ... ```."
)


def is_plotting(source: str) -> bool:
    return bool(_PLOTTING.search(source))


def clean_traceback(text: str) -> str:
    text = strip_ansi(text or "").strip("\n")
    return text if len(text) <= TRACEBACK_CAP else "...\n" + text[-TRACEBACK_CAP:]


def fix_messages(source: str, traceback: str, note: str, descriptions: dict[str, str], lib: str) -> list[dict]:
    """First turn of a fix: the request, the user's code as the earlier reply, then the problem."""
    from ..core.prompt import FEEDBACK, first_turn

    note = (note or "").strip()
    traceback = clean_traceback(traceback)
    if not traceback and not note:
        raise RequestError("Nothing to fix: the cell raised no error. Say what is wrong with the plot, e.g. 'labels overlap'.")
    messages = first_turn(note or DEFAULT_INTENT, descriptions, lib)
    messages.append({"role": "assistant", "content": f"```python\n{source.strip()}\n```"})
    if traceback:
        # VisCoder's own feedback turn; a note rides along under the traceback.
        error = f"{traceback}\nAlso, what is wrong with the plot: {note}" if note else traceback
        report = FEEDBACK.format(failed="failed", error=error)
    else:
        report = FIX_NOTE.format(note=note)
    messages.append({"role": "user", "content": report})
    return messages


def frames_for_code(namespace: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The DataFrames the code names; else the only one in the namespace."""
    candidates = frames_in(namespace)
    if not candidates:
        raise RequestError(
            "No DataFrame in this notebook's kernel: VisCoder fixes plots of pandas DataFrames. "
            "Run the cell that loads your data first."
        )
    named = {k: v for k, v in candidates.items() if re.search(rf"(?<!\w){re.escape(k)}(?!\w)", source)}
    if named:
        return check_frames(named)
    if len(candidates) == 1:
        return check_frames(candidates)
    raise RequestError(
        f"The code names none of the DataFrames in the kernel ({', '.join(sorted(candidates))}); "
        "mention the one it plots."
    )


def request_text(source: str, note: str) -> str:
    """A one-line description of the fix, for results and the inserted cell's header."""
    if note and note.strip():
        return note.strip()
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return f"make this run: {first[:80]}"


async def async_fix(source: str, traceback: str, note: str, frames: dict[str, Any], settings, on_event=None, **kw):
    """Run the self-debug loop from the user's code and its traceback (or a note)."""
    from ..core import loop
    from ..core.context import describe_frames

    if not source.strip():
        raise RequestError("The cell is empty: there is no code to fix.")
    frames = check_frames(frames)
    messages = fix_messages(source, traceback, note, describe_frames(frames, settings.frame_budget), settings.lib)
    return await loop.async_run(request_text(source, note), frames, settings, on_event, messages=messages, **kw)


@dataclass
class CellRecord:
    """A cell as it ran: its source and, if it failed, its ANSI-free traceback."""

    source: str
    execution_count: int | None
    order: int
    traceback: str = ""
    ename: str = ""
    evalue: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.ename)

    @property
    def label(self) -> str:
        return f"In [{self.execution_count}]" if self.execution_count else "the last cell"


@dataclass
class CellHistory:
    """A post_run_cell hook: remembers the last cell that failed and the last plotting cell."""

    shell: Any
    last_failed: CellRecord | None = None
    last_plotting: CellRecord | None = None
    _counter: Any = field(default_factory=itertools.count, repr=False)

    def post_run_cell(self, result) -> None:
        info = getattr(result, "info", None)
        source = getattr(info, "raw_cell", "") or ""
        if not source.strip() or _VISCODER_CELL.search(source):
            return
        record = CellRecord(source, getattr(result, "execution_count", None), next(self._counter))
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            record.ename, record.evalue = type(error).__name__, str(error)
            record.traceback = self._traceback(error)
            self.last_failed = record
        if is_plotting(source):
            self.last_plotting = record

    def _traceback(self, error: BaseException) -> str:
        try:
            formatter = self.shell.SyntaxTB if isinstance(error, SyntaxError) else self.shell.InteractiveTB
            lines = formatter.structured_traceback(type(error), error, error.__traceback__)
        except Exception:  # noqa: BLE001 (a formatter that fails must not break the user's cell)
            import traceback

            lines = traceback.format_exception(type(error), error, error.__traceback__)
        return clean_traceback("\n".join(lines))

    def target(self, note: str) -> CellRecord:
        """Without a note, the last failed cell; with one, the latest failed or plotting cell."""
        if not (note and note.strip()):
            if self.last_failed is None:
                raise RequestError(
                    "No cell has failed yet, so there is nothing to fix. Say what is wrong with the last "
                    "plot instead, e.g. %viscoder_fix the labels overlap"
                )
            return self.last_failed
        found = [r for r in (self.last_failed, self.last_plotting) if r is not None]
        if not found:
            raise RequestError("No plotting cell has run yet: run the cell that draws your plot first.")
        return max(found, key=lambda r: r.order)
