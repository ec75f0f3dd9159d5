"""What is known about an attempt's figure, in words: what it drew, and which request rules it
passes or misses (shown under the result by the magic and the sidebar)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .checks import figure_flaws
from .request_checks import findings, frame_columns, join_words


def verified_text(attempt, request: str | None = None, frames_columns: Any = None) -> str:
    """What is known about an attempt's figure, e.g. "ran and drew 1 figure with 3 bars",
    "ran and drew a plotly figure with 2 traces (bar)"; what is visibly wrong with it ("; but 24
    bars at 4 x positions overlap: ..."); with `request`, the request rules it passes ("; follows
    the request: horizontal bars, sorted") or misses. `frames_columns`: as `findings` takes it
    (`frame_columns(frames, request)`), for the rules on the columns the request names."""
    if not getattr(attempt, "drew", False):
        return "did not draw a figure"
    facts = [f for f in (attempt.figure_facts or []) if isinstance(f, dict) and "axes" in f]
    plotly_json = attempt.plotly_json or []
    parts = []
    if facts:
        parts.append(_matplotlib_words(facts))
    for fig in plotly_json:
        traces = [t for t in fig.get("data", []) if isinstance(t, dict)]
        kinds = sorted({str(t.get("type") or "scatter") for t in traces})
        parts.append(
            f"a plotly figure with {_count(len(traces), 'trace')}" + (f" ({', '.join(kinds)})" if kinds else "")
        )
    if not parts:
        images = len(getattr(attempt, "images", []) or [])
        parts.append(f"{_count(images, 'image')} (nothing known about what is drawn)" if images else "a figure")
    text = "ran and drew " + " and ".join(parts)
    flaws = figure_flaws(facts, attempt.code or "")
    if flaws:  # what the loop fed back and no attempt fixed (checks.flawed_problem)
        text += "; but " + "; ".join(f.what for f in flaws)
    if request:
        checked = findings(request, attempt.code, frames_columns, attempt.figure_facts, plotly_json)
        passed = [f.checked for f in checked if f.ok]
        missed = [f.miss for f in checked if not f.ok]
        if passed:
            text += "; follows the request: " + ", ".join(passed)
        if missed:
            text += "; misses: " + "; ".join(missed)
    return text


def unsent_misses(request: str, attempt: Any, frames: Mapping[str, Any], settings: Any) -> str:
    """Why the retries ended on a figure that misses the request, or "": with the request checks
    not judging (the `checks` or `request_checks` setting off), a figure that draws ends the loop
    even when these rules see a miss. Said so the user knows the tries left were not forgotten."""
    if getattr(settings, "checks", False) and getattr(settings, "request_checks", False):
        return ""  # judged: a figure that passed misses nothing
    facts, plotly_json = attempt.figure_facts, attempt.plotly_json
    checked = findings(request, attempt.code, frame_columns(frames, request), facts, plotly_json)
    missed = [f.miss for f in checked if not f.ok]
    if not missed:
        return ""
    switch = "checks" if not getattr(settings, "checks", False) else "request_checks"
    return (
        f"the code drew a figure, which ends the retries, though it misses the request ({'; '.join(missed)}); "
        f"such misses go back to the model only with the {switch!r} setting on "
        f"(%config VisCoder.{switch} = True)"
    )


def _matplotlib_words(facts: list[dict]) -> str:
    totals = {"bars": 0, "lines": 0, "points": 0, "marks": 0}
    orientations = set()
    panels = 0
    for fig in facts:
        for ax in fig.get("axes", []):
            if not ax.get("marks"):
                continue
            panels += 1
            known = 0
            for key in ("bars", "lines", "points"):
                totals[key] += ax.get(key) or 0
                known += ax.get(key) or 0
            totals["marks"] += max(0, ax.get("marks", 0) - known)
            if ax.get("orientation"):
                orientations.add(ax["orientation"])
    what = []
    if totals["bars"]:
        way = orientations.pop() + " " if len(orientations) == 1 and "mixed" not in orientations else ""
        what.append(_count(totals["bars"], way + "bar"))
    if totals["lines"]:
        what.append(_count(totals["lines"], "line"))
    if totals["points"]:
        what.append(_count(totals["points"], "point"))
    if totals["marks"] and not what:
        what.append(_count(totals["marks"], "mark"))
    text = _count(len(facts), "figure")
    if panels > 1:
        text += f" ({panels} panels)"
    return text + (" with " + join_words(what) if what else " with nothing drawn")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
