"""Checks on code that ran: is the figure it drew the one that was asked for?

The child kernel reports facts about each matplotlib figure (marks drawn per axes,
colliding tick labels, bars drawn over each other, lines whose x runs back and forth;
child/_viscoder_child.py); plotly figures arrive as JSON. A failed check becomes a
`FigureProblem`, fed back to the model like an error: a figure that draws nothing or draws
wrongly (`flawed_problem`) always, the figure's quality with the `checks` setting.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from .errors import FigureProblem
from .request_words import grouping_columns

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


FLAWS = ("OverlappingBars", "ZigzagLine", "EmptyLegend")  # the enames of flawed_problem


@dataclass
class Flaw:
    """Something visibly wrong in a figure that draws: `what` for the user, `fix` for the model."""

    ename: str
    what: str
    fix: str


def flawed_problem(
    facts: list[dict] | None, code: str = "", request: str = "", columns: list[str] = ()
) -> FigureProblem | None:
    """The figure draws, but wrongly in a way its facts show: bars hiding each other (values not
    aggregated), a line zig-zagging over unsorted x or joining several groups, an empty legend.
    Like an empty figure: a failed attempt whatever the settings. `code`, `request` and the
    frames' `columns` only make the suggested fix concrete."""
    flaws = figure_flaws(facts, code, request, columns)
    if not flaws:
        return None
    return FigureProblem(
        flaws[0].ename,
        "; ".join(f.what for f in flaws) + ".\n" + "\n".join(f"- {f.fix}" for f in flaws),
    )


def figure_flaws(facts: list[dict] | None, code: str = "", request: str = "", columns: list[str] = ()) -> list[Flaw]:
    """Each kind of flaw once, in the order bars, lines, legend."""
    bars = line = legend = None
    for fig in facts or []:
        if not isinstance(fig, dict):
            continue
        legend = legend or fig.get("legend_empty")
        for ax in fig.get("axes", []):
            for bar_set in ax.get("bar_sets", []) or []:
                if bars is None and _overlapping(bar_set):
                    bars = bar_set
            if line is None:
                line = next((lf for lf in ax.get("unordered_lines", []) or [] if _line_flaw(lf)), None)
            legend = legend or (ax.get("legend_empty") and ax.get("marks"))
    flaws = []
    if bars is not None:
        flaws.append(_bars_flaw(bars, code))
    if line is not None:
        flaws.append(_zigzag_flaw(line, code, request, columns))
    if legend:
        flaws.append(
            Flaw(
                "EmptyLegend",
                "the legend is empty: no plotted artist has a label",
                "Give each plotted series a label (plt.plot(x, y, label='North'), one per group) before calling "
                "plt.legend(), or drop the legend if there is only one series.",
            )
        )
    return flaws


def _overlapping(bar_set: dict) -> bool:
    """Most positions hold bars drawn over each other: a table not aggregated. One repeated category
    among unique ones (a duplicate row) is left to the data."""
    shared, positions = bar_set.get("shared_positions") or 0, bar_set.get("distinct_positions") or 0
    return shared > 0 and 2 * shared >= positions


def _line_flaw(line: dict) -> str | None:
    """How a line's x runs out of order: 'unsorted' (back and forth at random: rows not sorted),
    'groups' (runs up, jumps back to the start, runs up again; or climbs with several y at each x:
    several groups in one line), or None (a path drawn on purpose: small steps, few turns)."""
    n, back, forward = line.get("points", 0), line.get("back", 0), line.get("forward", 0)
    if n < 6 or line.get("straight"):  # a straight line drawn over itself looks right
        return None
    if line.get("reversals", 0) >= max(2, 0.25 * (n - 2)) and line.get("mean_step", 0) >= 0.1:
        return "unsorted"
    if back and line.get("big_back", 0) == back and forward >= 3 * back:
        return "groups"
    if not back and line.get("distinct_x", n) * 3 <= n:
        return "groups"
    return None


def _bars_flaw(bars: dict, code: str) -> Flaw:
    n, at = bars.get("count", 0), bars.get("distinct_positions", 0)
    axis = "y" if bars.get("orientation") == "horizontal" else "x"
    call = _plotted(code, ("barh",) if axis == "y" else ("bar",))
    if call:
        frame, x, y = call
        method = "barh" if axis == "y" else "bar"
        example = (
            f"totals = {frame}.groupby({x!r})[{y!r}].sum(), then plt.{method}(totals.index, totals.values) "
            "(or .mean(), whichever the request asks for)"
        )
    else:
        example = "totals = df.groupby('<category>')['<value>'].sum(), then plt.bar(totals.index, totals.values)"
    return Flaw(
        "OverlappingBars",
        f"{n} bars at {at} {axis} positions overlap: each position shows only the bar drawn last",
        f"The rows were plotted one bar each, several per {axis} category, so the bars hide each other. "
        f"Aggregate first, one value per category: {example}. For one bar per row within each category, "
        "use grouped bars (seaborn: sns.barplot(..., hue=<other column>)).",
    )


def _zigzag_flaw(line: dict, code: str, request: str, columns: list[str]) -> Flaw:
    call = _plotted(code, ("plot",))
    frame, x, y = call or ("df", "<x column>", "<y column>")
    groups = [c for c, _ in grouping_columns(request, columns or [])] if request else []
    group = next((c for c in groups if c not in (x, y)), "<group column>")
    per_group = (
        f"for name, part in {frame}.groupby({group!r}): plt.plot(part[{x!r}], part[{y!r}], label=name)"
        if call or groups
        else "one plt.plot(...) per group, each with label=..."
    )
    if _line_flaw(line) == "unsorted":
        what = "the line goes back and forth along x (its points are not in x order), so it draws a zig-zag"
        fix = (
            f"Sort by x before drawing a line ({frame} = {frame}.sort_values({x!r})), or aggregate to one y per x; "
            f"if the rows hold several groups, draw one line per group: {per_group}."
        )
    else:
        what = "one line joins several groups: its x runs through the same values more than once"
        fix = f"Draw one line per group, each sorted by x, with a legend: {per_group}; then plt.legend()."
    return Flaw("ZigzagLine", what, fix)


def _plotted(code: str, methods: tuple[str, ...]) -> tuple[str, str, str] | None:
    """(frame, x column, y column) of the first call like plt.bar(df['a'], df['b'])."""
    try:
        tree = ast.parse(code or "")
    except (SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in methods:
            pairs = [_column_of(a) for a in node.args[:2]]
            if len(pairs) == 2 and all(pairs) and pairs[0][0] == pairs[1][0]:
                return pairs[0][0], pairs[0][1], pairs[1][1]
    return None


def _column_of(node: ast.AST) -> tuple[str, str] | None:
    """('df', 'a') for df['a'] or df.a."""
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return node.value.id, key.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr not in _NOT_COLUMNS:
        return node.value.id, node.attr
    return None


_NOT_COLUMNS = {"index", "values", "columns", "array", "T", "iloc", "loc", "dt", "str", "cat", "name", "shape"}


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
