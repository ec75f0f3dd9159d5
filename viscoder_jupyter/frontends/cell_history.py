"""Which cell `%viscoder_fix` fixes: a post_run_cell hook remembers the last failed and plotting cells
(and tells the dialogue log when an inserted cell ran without error)."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import RequestError
from ..core.fix import clean_traceback

# What a cell that draws looks like; `%viscoder_fix <note>` with no failed cell fixes the latest.
_PLOTTING = re.compile(
    r"\b(?:plt|sns|px|go|ax|axes|fig|matplotlib|seaborn|plotly)\b\s*\.|\.plot\b|\.(?:hist|boxplot|scatter|bar|barh)\s*\(|"
    r"^\s*(?:import|from)\s+(?:matplotlib|seaborn|plotly)",
    re.MULTILINE,
)
_VISCODER_CELL = re.compile(r"^\s*%%?viscoder", re.MULTILINE)
_MAX_WATCHED = 100
log = logging.getLogger(__name__)


def is_plotting(source: str) -> bool:
    return bool(_PLOTTING.search(source))


def code_lines(source: str) -> str:
    """The lines that run: neither blank nor comments, trailing space dropped."""
    return "\n".join(
        line.rstrip() for line in source.splitlines() if line.strip() and not line.lstrip().startswith("#")
    )


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
    # Inserted code waiting to be run: its statements (code_lines) -> what to call once it runs cleanly.
    _watched: dict[str, Callable[[], None]] = field(default_factory=dict, repr=False)

    def watch(self, code: str, on_kept: Callable[[], None]) -> None:
        """Call `on_kept` once, when a cell holding exactly this code runs without error: the
        user kept the code the magic inserted. Comments may differ (the inserted cell's header,
        a review's commented-out lines must be uncommented first); an edited statement is other code."""
        if code_lines(code):
            self._watched[code_lines(code)] = on_kept
        while len(self._watched) > _MAX_WATCHED:  # the oldest waits no longer
            self._watched.pop(next(iter(self._watched)))

    def post_run_cell(self, result) -> None:
        info = getattr(result, "info", None)
        source = getattr(info, "raw_cell", "") or ""
        if not source.strip() or _VISCODER_CELL.search(source):
            return
        record = CellRecord(source, getattr(result, "execution_count", None), next(self._counter))
        error = result.error_before_exec or result.error_in_exec
        if error is None and code_lines(source) in self._watched:
            on_kept = self._watched.pop(code_lines(source))
            try:
                on_kept()
            except Exception:  # noqa: BLE001 (a log that cannot be written must not break the user's cell)
                log.warning("VisCoder: the verdict could not be logged", exc_info=True)
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
