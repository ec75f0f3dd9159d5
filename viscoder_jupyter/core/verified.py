"""What is known about an attempt's figure, in words: what it drew, and which request rules it
passes or misses (shown under the result by the magic and the sidebar)."""

from __future__ import annotations

from typing import Any

from .request_checks import findings, join_words


def verified_text(attempt, request: str | None = None, frames_columns: Any = None) -> str:
    """What is known about an attempt's figure, e.g. "ran and drew 1 figure with 3 bars",
    "ran and drew a plotly figure with 2 traces (bar)"; with `request`, the request rules it
    passes ("; follows the request: horizontal bars, sorted") or misses."""
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
    if request:
        checked = findings(request, attempt.code, frames_columns, attempt.figure_facts, plotly_json)
        passed = [f.checked for f in checked if f.ok]
        missed = [f.miss for f in checked if not f.ok]
        if passed:
            text += "; follows the request: " + ", ".join(passed)
        if missed:
            text += "; misses: " + "; ".join(missed)
    return text


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
