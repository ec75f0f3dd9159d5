"""Does the figure do what the request asked, as far as that can be told without a model?

Four rules, each applied only when the request's words call for it:

- columns the request names (its text holds a real column name: case-insensitive, whole
  words, 3+ characters unless quoted) are used by the code (a string literal or an attribute);
- "by X", "per X", "for each X", "each X" (X a column): the code groups on X or maps it to an
  encoding (groupby, pivot, hue=, color=, x=, a loop over X's values...), or the figure's tick
  or legend labels are X's values;
- "horizontal" bars: the bars run horizontally (the child's `orientation` fact, plotly's
  orientation='h');
- "sorted", "ascending", "descending", "ranked"...: the bar lengths are monotonic along the axis.

A miss becomes a `FigureProblem` fed back to the model like the other checks (checks.py).
Pure functions: the child kernel's figure facts (child/_viscoder_child.py) and plotly's JSON come in
as data.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .code_facts import ANY_COLUMNS, Code
from .errors import FigureProblem
from .request_words import BY_LABEL, HORIZONTAL, SORTED, column_pattern, grouping_columns, named_columns, sort_keys

ENAME = "NotAsRequested"


@dataclass
class Finding:
    """One rule the request called for: what was checked and, if it failed, what to do."""

    rule: str  # "columns", "grouping", "horizontal", "sorted"
    checked: str  # what the rule verified, in a few words
    ok: bool
    miss: str = ""  # what is wrong (failed rules)
    fix: str = ""  # how to mend it, for the model


# ---- the check ---------------------------------------------------------------------------------


def request_problem(
    request: str, code: str, frames_columns: Any, figure_facts: list[dict] | None, plotly_json: list[dict] | None
) -> FigureProblem | None:
    """What the figure misses of the request, as one `FigureProblem`, or None.

    frames_columns: {frame name: its columns} (a list of names, or {column: its distinct values
    as strings, or None}: `frame_columns` builds it), or one plain list of column names, or None
    when the columns are not known (the column rules are then skipped).
    """
    failed = [f for f in findings(request, code, frames_columns, figure_facts, plotly_json) if not f.ok]
    if not failed:
        return None
    return FigureProblem(
        ENAME,
        "The figure does not do what the request asks: "
        + "; ".join(f.miss for f in failed)
        + ".\n"
        + "\n".join(f"- {f.fix}" for f in failed),
    )


def check_request(
    request: str, code: str, frames: Mapping[str, Any], figure_facts: list[dict] | None, plotly_json: list[dict] | None
) -> FigureProblem | None:
    """`request_problem` for the live frames (what the loop calls)."""
    return request_problem(request, code, frame_columns(frames, request), figure_facts, plotly_json)


def frame_columns(frames: Mapping[str, Any], request: str = "") -> dict[str, dict[str, list[str] | None]]:
    """{frame name: {column: distinct values as text, or None}}; values only for the columns the
    request groups by ("by region"), and only where there are at most 100."""
    out: dict[str, dict[str, list[str] | None]] = {}
    for name, df in frames.items():
        columns = [c for c in getattr(df, "columns", []) if isinstance(c, str)]
        grouped = {col for col, _ in grouping_columns(request, columns)} | set(sort_keys(request, columns))
        out[name] = {}
        for col in columns:
            values = None
            if col in grouped:
                try:
                    series = df[col]
                    if getattr(series, "ndim", 2) == 1 and series.nunique() <= 100:
                        values = [_as_label(v) for v in series.dropna().unique()]
                except Exception:  # unhashable cells and the like: no values, no rescue
                    values = None
            out[name][col] = values
    return out


def findings(
    request: str, code: str, frames_columns: Any, figure_facts: list[dict] | None, plotly_json: list[dict] | None
) -> list[Finding]:
    """Every rule the request calls for, checked (passed or failed)."""
    request = request or ""
    code = code or ""
    facts = [f for f in (figure_facts or []) if isinstance(f, dict) and "axes" in f]
    plotly_json = plotly_json or []
    names, columns = _normalize(frames_columns)
    out: list[Finding] = []
    source = Code(code)
    reads_frames = not names or any(n in source.names for n in names) or not source.parsed
    if columns and reads_frames:  # code that never reads the frames has nothing of theirs to check
        out += _column_findings(request, source, columns, facts, plotly_json, names)
    if HORIZONTAL.search(request):
        found = _horizontal(code, facts, plotly_json)
        if found is not None:
            out.append(found)
    if SORTED.search(request):
        # Sorted by a column whose values are the bars' labels ("in order of year"): the labels are in order.
        keys = [columns[c] for c in sort_keys(request, columns) if columns.get(c)]
        found = _sorted(code, facts, plotly_json, bool(BY_LABEL.search(request)), keys)
        if found is not None:
            out.append(found)
    return out


def follows_request(
    request: str, code: str, frames_columns: Any, figure_facts: list[dict] | None, plotly_json: list[dict] | None
) -> bool:
    return request_problem(request, code, frames_columns, figure_facts, plotly_json) is None


def join_words(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


# ---- columns: named, grouped by ------------------------------------------------------------------


def _normalize(frames_columns: Any) -> tuple[list[str], dict[str, list[str] | None]]:
    """(frame names, {column: its values or None}) from {frame: columns} or a plain list of columns."""
    if not frames_columns:
        return [], {}
    if not isinstance(frames_columns, Mapping):
        return [], {c: None for c in frames_columns if isinstance(c, str)}
    columns: dict[str, list[str] | None] = {}
    for cols in frames_columns.values():
        items = cols.items() if isinstance(cols, Mapping) else ((c, None) for c in cols or [])
        for col, values in items:
            if isinstance(col, str):
                columns[col] = columns.get(col) or (list(values) if values else None)
    return [str(name) for name in frames_columns], columns


def _column_findings(request, source: Code, columns, facts, plotly_json, names=()) -> list[Finding]:
    out = []
    implicit = bool(ANY_COLUMNS.search(source.text)) or source.plots_whole_frame(names)
    labels = _figure_labels(facts, plotly_json)
    named = named_columns(request, columns)
    if named:
        unused = []
        for _, _, cols in named:
            if implicit or any(source.uses(c) or any(_label_names(lab, c) for lab in labels) for c in cols):
                continue
            col = sorted(cols)[0]
            if col not in unused:
                unused.append(col)
        used = sorted({sorted(cols)[0] for _, _, cols in named} - set(unused))
        if used:
            out.append(Finding("columns", "uses " + join_words(used), True))
        if unused:
            quoted = ", ".join(repr(c) for c in unused)
            out.append(
                Finding(
                    "columns",
                    "uses " + join_words(unused),
                    False,
                    f"it names the column{'s' * (len(unused) > 1)} {quoted}, which the code never uses",
                    f"Use the column{'s' * (len(unused) > 1)} {quoted} as the request says (as the plotted values, "
                    f"an axis or the grouping); refer to {'them' if len(unused) > 1 else 'it'} by the exact name, "
                    f"e.g. df[{unused[0]!r}].",
                )
            )
    for col, words in grouping_columns(request, columns):
        values = columns.get(col)
        if values is not None and len(values) < 2:
            continue  # one value: every figure is "by" it
        if source.groups_on(col) or (not source.parsed and re.search(rf"['\"]{re.escape(col)}['\"]", source.text)):
            out.append(Finding("grouping", f"split by {col}", True))
            continue
        if values and _labels_show(values, labels):
            out.append(Finding("grouping", f"split by {col}", True))
            continue
        out.append(
            Finding(
                "grouping",
                f"split by {col}",
                False,
                f"it asks for the data {words!r}, but the figure is not split by {col!r}",
                f"Group on {col!r} (df.groupby({col!r})...) or map it to an encoding (x={col!r}, hue={col!r} in "
                f"seaborn, color={col!r} in plotly, one bar/line per {col} with a legend), so that each {col} "
                "gets its own mark; do not just filter on it.",
            )
        )
    return out


def _label_names(label: str, col: str) -> bool:
    return bool(re.search(column_pattern(col), label, re.I))


def _labels_show(values: list[str], labels: list[str]) -> bool:
    """At least two of the column's values (all, if it has fewer) are labels of the figure."""
    shown = {lab.strip().lower() for lab in labels}
    hits = sum(1 for v in values if v.strip().lower() in shown)
    return hits >= min(2, len(values))


def _figure_labels(facts: list[dict], plotly_json: list[dict]) -> list[str]:
    """Tick and legend labels: they come from the data, unlike titles the model writes."""
    labels: list[str] = []
    for fig in facts:
        labels += [str(x) for x in fig.get("legend", []) or []]
        for ax in fig.get("axes", []):
            for key in ("ticks_x", "ticks_y", "legend"):
                labels += [str(x) for x in ax.get(key, []) or []]
    for fig in plotly_json:
        for trace in fig.get("data", []):
            if not isinstance(trace, dict):
                continue
            for key in ("name", "hovertemplate", "legendgroup"):
                if isinstance(trace.get(key), str):
                    labels.append(trace[key])
            for key in ("x", "y", "labels", "ids"):
                value = trace.get(key)
                if isinstance(value, list):
                    labels += [str(v) for v in value[:200] if isinstance(v, str)]
    return labels


def _as_label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# ---- bars: horizontal, sorted ---------------------------------------------------------------------

_BARH_IN_CODE = re.compile(r"\bbarh\b|orient(?:ation)?\s*=\s*['\"]h", re.I)


def _plotly_bars(plotly_json: list[dict]) -> list[dict]:
    return [
        t
        for fig in plotly_json
        for t in fig.get("data", [])
        if isinstance(t, dict) and t.get("type") in ("bar", "histogram", "funnel")
    ]


def _horizontal(code: str, facts: list[dict], plotly_json: list[dict]) -> Finding | None:
    ways = [ax.get("orientation") for fig in facts for ax in fig.get("axes", []) if ax.get("orientation")]
    ways += ["horizontal" if t.get("orientation") == "h" else "vertical" for t in _plotly_bars(plotly_json)]
    if not ways:
        if not facts and not plotly_json and _BARH_IN_CODE.search(code):
            return Finding("horizontal", "horizontal bars", True)
        return None  # no bars seen: nothing to say about their direction
    if any(w in ("horizontal", "mixed") for w in ways):
        return Finding("horizontal", "horizontal bars", True)
    if "plotly" in code:
        fix = (
            "Draw horizontal bars: px.bar(..., x=<values>, y=<categories>, orientation='h') (go.Bar(orientation='h'))."
        )
    elif "seaborn" in code or "sns." in code:
        fix = "Draw horizontal bars: sns.barplot(data=..., x=<values>, y=<categories>, orient='h')."
    else:
        fix = (
            "Draw horizontal bars: plt.barh(categories, values) or ax.barh(...) (pandas: .plot.barh() or "
            "kind='barh'), with the categories on the y axis."
        )
    return Finding(
        "horizontal", "horizontal bars", False, "it asks for horizontal bars, but the bars are vertical", fix
    )


def _monotonic(values: list[float]) -> bool:
    if len(values) < 3:
        return True
    tol = 1e-9 * max(1.0, max(abs(v) for v in values))
    steps = [b - a for a, b in zip(values, values[1:])]
    return all(s >= -tol for s in steps) or all(s <= tol for s in steps)


def _labels_sorted(labels: list[str]) -> bool:
    if len(labels) < 3:
        return True
    try:
        numbers = [float(x.replace("\u2212", "-").replace(",", "")) for x in labels]
        return _monotonic(numbers)
    except ValueError:
        folded = [x.strip().lower() for x in labels]
        return folded == sorted(folded) or folded == sorted(folded, reverse=True)


def _bar_sequences(ax: dict) -> list[list[float]]:
    """Bar lengths in axis order: per set of bars, stacked sets summed, dodged sets by rank."""
    sets = [s for s in ax.get("bar_sets", []) or [] if s.get("lengths")]
    if not sets:
        return []
    sequences = [list(map(float, s["lengths"])) for s in sets]
    if len(sets) > 1:
        if all(s.get("positions") == sets[0].get("positions") for s in sets):  # stacked
            return [[sum(v) for v in zip(*sequences)]]
        width = min(len(seq) for seq in sequences)
        sequences.append([sum(seq[i] for seq in sequences) for i in range(width)])
    return sequences


def _sorted(
    code: str, facts: list[dict], plotly_json: list[dict], by_label: bool, keys: list[list[str]] = ()
) -> Finding | None:
    """`by_label`: the request sorts by name or date; `keys`: the values of the columns it sorts
    by: where they are the bars' labels, labels in order pass too."""
    seen: list[list[float]] = []
    for fig in facts:
        for ax in fig.get("axes", []):
            sequences = _bar_sequences(ax)
            if not sequences:
                continue
            seen += sequences
            if any(_monotonic(seq) for seq in sequences):
                return Finding("sorted", "sorted bars", True)
            ticks = ax.get("ticks_y" if ax.get("orientation") == "horizontal" else "ticks_x") or []
            if (by_label or any(_labels_show(k, ticks) for k in keys)) and _labels_sorted(ticks):
                return Finding("sorted", "sorted bars", True)
    layout_orders = []
    for fig in plotly_json:
        layout = fig.get("layout", {}) or {}
        layout_orders += [
            str((layout.get(k) or {}).get("categoryorder", "")) for k in layout if k[:5] in ("xaxis", "yaxis")
        ]
    traces = _plotly_bars(plotly_json)
    if traces:
        if any("total" in o or (by_label and "category" in o) for o in layout_orders):
            return Finding("sorted", "sorted bars", True)
        sequences = []
        for trace in traces:
            lengths = _plotly_array(trace.get("x" if trace.get("orientation") == "h" else "y"))
            if lengths:
                sequences.append(lengths)
        if len(sequences) > 1:
            width = min(len(s) for s in sequences)
            sequences.append([sum(s[i] for s in sequences) for i in range(width)])
        if any(_monotonic(s) for s in sequences):
            return Finding("sorted", "sorted bars", True)
        seen += sequences
    if not seen:
        return None  # no bars: "sorted" is about something this check does not see
    sample = ", ".join(f"{v:g}" for v in seen[0][:6]) + (", ..." if len(seen[0]) > 6 else "")
    fix = (
        "Sort the values before plotting (e.g. totals = totals.sort_values(ascending=False), then plot "
        "totals.index against totals.values); categories that are numbers are placed by value, so "
        "convert them to text first."
    )
    if "plotly" in code:
        fix += " In plotly: fig.update_layout(xaxis={'categoryorder': 'total descending'}) (yaxis for horizontal bars)."
    return Finding(
        "sorted",
        "sorted bars",
        False,
        f"it asks for sorted bars, but the bar lengths along the axis are not in order ({sample})",
        fix,
    )


def _plotly_array(value: Any) -> list[float]:
    if isinstance(value, dict) and value.get("bdata"):  # plotly >= 6 packs arrays
        try:
            import numpy as np

            return [float(v) for v in np.frombuffer(base64.b64decode(value["bdata"]), dtype=value.get("dtype", "f8"))]
        except Exception:
            return []
    if isinstance(value, (list, tuple)):
        try:
            return [float(v) for v in value]
        except (TypeError, ValueError):
            return []
    return []
