"""Checks on code that ran: is the figure it drew the one that was asked for?

The child kernel reports facts about each matplotlib figure (marks drawn per axes,
colliding tick labels; child/_viscoder_child.py); plotly figures arrive as JSON. A failed
check becomes a `FigureProblem`, fed back to the model like an error: a figure that draws
nothing always, the figure's quality with the `checks` setting.
"""

from __future__ import annotations

import re

from .errors import FigureProblem

# A request that asks for several plots may get several figures ("Create two plots", "both
# charts", "one plot per region"); "subplots" asks for one figure and does not match.
_SEVERAL = re.compile(
    r"\b(figures|plots|charts|graphs|(one|a|each) (plot|chart|figure|graph) (per|for each)|"
    r"each (plot|chart|figure|graph))\b",
    re.I,
)
CROWDED_SHARE = 0.2  # of neighbouring tick labels colliding before we call an axis unreadable


def empty_problem(facts: list[dict] | None, plotly_json: list[dict]) -> FigureProblem | None:
    """The figure draws nothing: not a plot at all, so a failed attempt whatever the settings."""
    if plotly_json and not any(_plotly_has_data(fig) for fig in plotly_json):
        return _empty("The plotly figure has no data in any trace")
    if facts and not _drawn(facts) and not any(f.get("error") for f in facts):
        return _empty("The code ran, but nothing is drawn on the axes of its figure")
    return None


def quality_problem(facts: list[dict] | None, request: str) -> FigureProblem | None:
    """A figure that draws, but not well (several figures for one, unreadable tick labels):
    the `checks` setting."""
    if not facts:  # no matplotlib figure (plotly, or an image shown another way)
        return None
    drawn = _drawn(facts)
    if len(facts) > 1 and not _SEVERAL.search(request):
        blank = len(facts) - len(drawn)
        return FigureProblem(
            "ManyFigures",
            (
                f"The code made {len(facts)} separate figures"
                + (f" ({blank} of them blank)" if blank else "")
                + ", but one figure was asked for. Draw everything in a single figure: create it once "
                "(plt.subplots for several panels; seaborn figure-level functions such as catplot or "
                "relplot make their own figure, so do not call plt.figure() before them)."
            ),
        )
    for fig in drawn:
        for ax in fig["axes"]:
            for axis in ("x", "y"):
                pairs, labels = ax.get(f"crowded_{axis}", (0, 0))
                if labels >= 3 and pairs >= max(2, CROWDED_SHARE * (labels - 1)):
                    return FigureProblem(
                        "CrowdedTicks",
                        (
                            f"The {axis} tick labels overlap ({pairs} of {labels - 1} neighbouring pairs collide), "
                            "so they cannot be read. "
                            + (
                                "Rotate them (plt.xticks(rotation=45, ha='right')), show fewer, or widen the figure."
                                if axis == "x"
                                else "Show fewer labels or make the figure taller."
                            )
                        ),
                    )
    return None


def _drawn(facts: list[dict]) -> list[dict]:
    return [f for f in facts if any(ax.get("marks") for ax in f.get("axes", []))]


def _empty(what: str) -> FigureProblem:
    return FigureProblem(
        "EmptyFigure",
        (
            f"{what}: the data it plotted is empty or all NaN. If the code filters rows, compare the "
            "filter with the column's real values; check the columns' dtypes (numbers stored as text, "
            "dates not parsed)."
        ),
    )


def _plotly_has_data(fig: dict) -> bool:
    for trace in fig.get("data", []):
        for key in ("x", "y", "z", "values", "r", "lat", "locations", "dimensions"):
            value = trace.get(key)
            if isinstance(value, (list, tuple)) and len(value):
                return True
            if isinstance(value, dict) and value.get("bdata"):  # plotly >= 6 packs arrays
                return True
    return False
