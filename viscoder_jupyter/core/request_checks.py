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

import ast
import base64
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .errors import FigureProblem

ENAME = "NotAsRequested"

# Words that are also column names but, unquoted, mostly mean themselves ("the total sales",
# "count of orders"): requiring such a column would fail figures that are right.
_GENERIC = {
    "all", "amount", "average", "avg", "bar", "bars", "chart", "color", "colour", "count", "data", "label",
    "line", "max", "mean", "median", "min", "number", "other", "percent", "percentage", "plot", "rank",
    "rate", "ratio", "share", "size", "sum", "title", "top", "total", "type", "value", "values", "index", "change",
}
# Calls whose arguments group on a column, and calls on a column that list its values.
_GROUPING = {"groupby", "pivot", "pivot_table", "crosstab", "set_index", "unstack", "stack", "melt",
             "resample", "Grouper", "cut", "qcut", "factorize", "Categorical", "get_dummies"}
_VALUES_OF = {"value_counts", "unique", "drop_duplicates"}
# Keyword arguments that map a column to an encoding (seaborn, plotly express, pandas .plot).
_ENCODINGS = {
    "x", "y", "hue", "color", "c", "col", "row", "style", "size", "s", "sizes", "facet_col", "facet_row",
    "symbol", "line_group", "line_dash", "pattern_shape", "columns", "index", "by", "labels", "names",
    "animation_frame", "level", "id_vars", "groups", "path", "parents", "ids", "dimensions", "tick_label",
    "xticklabels", "yticklabels", "x_vars", "y_vars", "values",
}
# Calls whose positional arguments are the data drawn (or the tick labels shown).
_PLOTTING = {
    "bar", "barh", "plot", "scatter", "pie", "boxplot", "violinplot", "step", "stem", "fill_between",
    "fill_betweenx", "stackplot", "hist", "errorbar", "hlines", "vlines", "barplot", "countplot",
    "lineplot", "scatterplot", "stripplot", "swarmplot", "pointplot", "catplot", "relplot", "boxenplot",
    "line", "area", "Bar", "Scatter", "Pie", "Box", "Histogram", "xticks", "yticks", "set_xticks",
    "set_yticks", "set_xticklabels", "set_yticklabels", "legend", "heatmap", "treemap", "sunburst",
}
# Access to columns by position or all at once: which columns are used is not in the text.
_ANY_COLUMNS = re.compile(r"\.columns\b|\.iloc\b|select_dtypes|\.melt\(|pairplot|\.corr\(|\.describe\(|\.T\b")
# Pandas methods that plot every column of the frame they are called on (df.plot(), df.hist()).
_WHOLE_FRAME = {"plot", "hist", "boxplot", "area", "line", "bar", "barh", "kde", "density", "box", "scatter_matrix"}

_BY = re.compile(r"\b(?:by|per|for each|for every|each)\s+(?:the\s+|each\s+|every\s+|their\s+|its\s+)?", re.I)
# "sorted by revenue", "top 10 countries by population": the column is a measure, not a grouping.
_NOT_GROUPING = re.compile(
    r"(?:\b(?:sort\w*|order\w*|rank\w*|divided|multiplied|normali[sz]ed|scaled|weighted|followed|filtered|"
    r"(?:top|bottom)(?:\s+\d+)?(?:\s+[\w-]+){1,2})\s*)$", re.I)
_LIST_SEPARATOR = re.compile(r"\s*(?:,\s*(?:and\s+|or\s+)?|\s(?:and|or|&)\s+|/\s*)(?:the\s+)?", re.I)

_HORIZONTAL = re.compile(
    r"\bhorizontal(?:ly)?(?:[\s-]+(?:oriented|stacked|grouped|sorted|aligned|ranked))?[\s-]+bar|"
    r"\bbars?\b(?:\s+(?:should|must|to|be|are|is|drawn|displayed|shown|plotted|oriented|laid|running|going|"
    r"that|which|made|out|appear|run|go)){0,3}\s+horizontal(?:ly)?\b(?!\s+(?:in|across|along|side|next|row)\b)|"
    r"\bbarh\b|\bbar\w*\b[^.\n]{0,40}\bhorizontal(?:ly)?\s+orient", re.I)
_SORTED = re.compile(
    r"\b(?:sort(?:ed|ing|s)?|ascending|descending|ordered|rank(?:ed|ing)?|in\s+(?:\w+\s+)?order\s+of|"
    r"(?:largest|highest|biggest|most|greatest|smallest|lowest|least|fewest)\s+to\s+(?:the\s+)?"
    r"(?:largest|highest|biggest|most|greatest|smallest|lowest|least|fewest))\b", re.I)
_SORT_KEY = re.compile(r"\b(?:sort\w*|order\w*|rank\w*|arrange\w*)\s+(?:[\w-]+\s+){0,2}?(?:by|on|of)\s+(?:the\s+)?",
                       re.I)
_BY_LABEL = re.compile(r"\balphabetic\w*|\bchronolog\w*|\b(?:sort\w*|order\w*)\s+(?:by|on)\s+(?:the\s+)?"
                       r"(?:name|names|date|dates|time|month|months|year|years|day|days|label|labels)\b", re.I)


@dataclass
class Finding:
    """One rule the request called for: what was checked and, if it failed, what to do."""

    rule: str          # "columns", "grouping", "horizontal", "sorted"
    checked: str       # what the rule verified, in a few words
    ok: bool
    miss: str = ""     # what is wrong (failed rules)
    fix: str = ""      # how to mend it, for the model


# ---- the check ---------------------------------------------------------------------------------

def request_problem(request: str, code: str, frames_columns: Any, figure_facts: list[dict] | None,
                    plotly_json: list[dict] | None) -> FigureProblem | None:
    """What the figure misses of the request, as one `FigureProblem`, or None.

    frames_columns: {frame name: its columns} (a list of names, or {column: its distinct values
    as strings, or None}: `frame_columns` builds it), or one plain list of column names, or None
    when the columns are not known (the column rules are then skipped).
    """
    failed = [f for f in findings(request, code, frames_columns, figure_facts, plotly_json) if not f.ok]
    if not failed:
        return None
    return FigureProblem(ENAME, "The figure does not do what the request asks: "
                         + "; ".join(f.miss for f in failed) + ".\n"
                         + "\n".join(f"- {f.fix}" for f in failed))


def check_request(request: str, code: str, frames: Mapping[str, Any], figure_facts: list[dict] | None,
                  plotly_json: list[dict] | None) -> FigureProblem | None:
    """`request_problem` for the live frames (what the loop calls)."""
    return request_problem(request, code, frame_columns(frames, request), figure_facts, plotly_json)


def frame_columns(frames: Mapping[str, Any], request: str = "") -> dict[str, dict[str, list[str] | None]]:
    """{frame name: {column: distinct values as text, or None}}; values only for the columns the
    request groups by ("by region"), and only where there are at most 100."""
    out: dict[str, dict[str, list[str] | None]] = {}
    for name, df in frames.items():
        columns = [c for c in getattr(df, "columns", []) if isinstance(c, str)]
        grouped = {col for col, _ in _grouping_columns(request, columns)} | set(_sort_keys(request, columns))
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


def findings(request: str, code: str, frames_columns: Any, figure_facts: list[dict] | None,
             plotly_json: list[dict] | None) -> list[Finding]:
    """Every rule the request calls for, checked (passed or failed)."""
    request = request or ""
    code = code or ""
    facts = [f for f in (figure_facts or []) if isinstance(f, dict) and "axes" in f]
    plotly_json = plotly_json or []
    names, columns = _normalize(frames_columns)
    out: list[Finding] = []
    source = _Code(code)
    reads_frames = not names or any(n in source.names for n in names) or not source.parsed
    if columns and reads_frames:  # code that never reads the frames has nothing of theirs to check
        out += _column_findings(request, source, columns, facts, plotly_json, names)
    if _HORIZONTAL.search(request):
        found = _horizontal(code, facts, plotly_json)
        if found is not None:
            out.append(found)
    if _SORTED.search(request):
        # Sorted by a column whose values are the bars' labels ("in order of year"): the labels are in order.
        keys = [columns[c] for c in _sort_keys(request, columns) if columns.get(c)]
        found = _sorted(code, facts, plotly_json, bool(_BY_LABEL.search(request)), keys)
        if found is not None:
            out.append(found)
    return out


def follows_request(request: str, code: str, frames_columns: Any, figure_facts: list[dict] | None,
                    plotly_json: list[dict] | None) -> bool:
    return request_problem(request, code, frames_columns, figure_facts, plotly_json) is None


# ---- what was verified, in words -----------------------------------------------------------------

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
        parts.append(f"a plotly figure with {_count(len(traces), 'trace')}"
                     + (f" ({', '.join(kinds)})" if kinds else ""))
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
    return text + (" with " + _join(what) if what else " with nothing drawn")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _join(words: list[str]) -> str:
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


def _column_pattern(col: str) -> str:
    """A column's name as a request may write it: any case, '_' or space alike, plural allowed."""
    body = r"[\s_]+".join(re.escape(part) for part in re.split(r"[\s_]+", col.strip()) if part)
    plural = r"(?:s|es)?" if col[-1:].isalpha() else ""
    return rf"(?<![\w]){body}{plural}(?![\w])"


def _named_columns(request: str, columns: Iterable[str]) -> list[tuple[int, int, set[str]]]:
    """Spans of the request that name columns: (start, end, the columns written that way).
    A span inside a longer one ("price" in "unit price" where unit_price is a column) is dropped."""
    spans: dict[tuple[int, int], set[str]] = {}
    for col in columns:
        if not col.strip():
            continue
        for quote in re.finditer(rf"""(['"`]){re.escape(col)}\1""", request):
            spans.setdefault((quote.start() + 1, quote.end() - 1), set()).add(col)
        if len(col.strip()) < 3 or col.strip().lower() in _GENERIC:
            continue
        for m in re.finditer(_column_pattern(col), request, re.I):
            spans.setdefault((m.start(), m.end()), set()).add(col)
    kept = []
    for (start, end), cols in spans.items():
        if any(s <= start and end <= e and (s, e) != (start, end) for s, e in spans):
            continue
        kept.append((start, end, cols))
    return sorted(kept, key=lambda item: item[0])


# "excluded by the Mask", "defined by X": a participle before "by" names a cause, not a grouping,
# unless it is one of these.
_GROUPING_VERBS = re.compile(
    r"\b(?:group|colou?r|split|break|broke|broken|segment|categori[sz]|stack|facet|size|shade|label|aggregat|"
    r"summari[sz]|cluster|separat|different|distinguish|organi[sz]|partition|bucket|bin|"
    r"encod|mark|hue|plott|show|display|sum|count|averag|tint|styl)\w*\s*$", re.I)
_PARTICIPLE = re.compile(r"\b(?:\w+ed|given|shown|driven|made|drawn|written|seen|taken|done|caused)\s*$", re.I)


def _grouping_columns(request: str, columns: Iterable[str]) -> list[tuple[str, str]]:
    """The columns after "by", "per", "for each", "each" (with "and"/"," lists): (column, the
    words that asked for it)."""
    columns = [c for c in columns if isinstance(c, str) and c.strip()]
    patterns = sorted(((c, re.compile(_column_pattern(c), re.I)) for c in columns), key=lambda cp: -len(cp[0]))
    found: list[tuple[str, str]] = []
    for trigger in _BY.finditer(request):
        before = request[max(0, trigger.start() - 60):trigger.start()]
        if _NOT_GROUPING.search(before):
            continue
        if trigger.group(0).lower().startswith("by") and _PARTICIPLE.search(before) \
                and not _GROUPING_VERBS.search(before):
            continue
        pos = trigger.end()
        while True:
            col, end = _column_at(request, pos, patterns)
            if col is None:
                break
            if col not in [c for c, _ in found]:
                found.append((col, request[trigger.start():end].strip()))
            sep = _LIST_SEPARATOR.match(request, end)
            if not sep:
                break
            pos = sep.end()
    return found


def _sort_keys(request: str, columns: Iterable[str]) -> list[str]:
    """The columns a request sorts by ("sorted by year", "in order of region")."""
    patterns = sorted(((c, re.compile(_column_pattern(c), re.I)) for c in columns if isinstance(c, str) and c.strip()),
                      key=lambda cp: -len(cp[0]))
    keys = []
    for trigger in _SORT_KEY.finditer(request or ""):
        col, _ = _column_at(request, trigger.end(), patterns)
        if col is not None:
            keys.append(col)
    return keys


def _column_at(text: str, pos: int, patterns) -> tuple[str | None, int]:
    best, best_end = None, pos
    for col, pattern in patterns:
        m = pattern.match(text, pos)
        if m and m.end() > best_end:
            best, best_end = col, m.end()
    return best, best_end


def _column_findings(request, source: "_Code", columns, facts, plotly_json, names=()) -> list[Finding]:
    out = []
    implicit = bool(_ANY_COLUMNS.search(source.text)) or source.plots_whole_frame(names)
    labels = _figure_labels(facts, plotly_json)
    named = _named_columns(request, columns)
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
            out.append(Finding("columns", "uses " + _join(used), True))
        if unused:
            quoted = ", ".join(repr(c) for c in unused)
            out.append(Finding(
                "columns", "uses " + _join(unused), False,
                f"it names the column{'s' * (len(unused) > 1)} {quoted}, which the code never uses",
                f"Use the column{'s' * (len(unused) > 1)} {quoted} as the request says (as the plotted values, "
                f"an axis or the grouping); refer to {'them' if len(unused) > 1 else 'it'} by the exact name, "
                f"e.g. df[{unused[0]!r}]."))
    for col, words in _grouping_columns(request, columns):
        values = columns.get(col)
        if values is not None and len(values) < 2:
            continue  # one value: every figure is "by" it
        if source.groups_on(col) or (not source.parsed and re.search(rf"['\"]{re.escape(col)}['\"]", source.text)):
            out.append(Finding("grouping", f"split by {col}", True))
            continue
        if values and _labels_show(values, labels):
            out.append(Finding("grouping", f"split by {col}", True))
            continue
        out.append(Finding(
            "grouping", f"split by {col}", False,
            f"it asks for the data {words!r}, but the figure is not split by {col!r}",
            f"Group on {col!r} (df.groupby({col!r})...) or map it to an encoding (x={col!r}, hue={col!r} in "
            f"seaborn, color={col!r} in plotly, one bar/line per {col} with a legend), so that each {col} "
            "gets its own mark; do not just filter on it."))
    return out


def _label_names(label: str, col: str) -> bool:
    return bool(re.search(_column_pattern(col), label, re.I))


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


class _Code:
    """What the code uses, from its syntax tree (text search where it does not parse)."""

    def __init__(self, text: str):
        self.text = text
        self.tree = _parse(text)
        self.parsed = self.tree is not None
        self.strings: set[str] = set()
        self.attributes: set[str] = set()
        self.names: set[str] = set()
        self.queries: list[str] = []
        self.aliases: dict[str, set[str]] = {}
        if self.tree is None:
            return
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                self.strings.add(node.value.strip())
            elif isinstance(node, ast.Attribute):
                self.attributes.add(node.attr)
            elif isinstance(node, ast.Name):
                self.names.add(node.id)
            elif isinstance(node, ast.Call) and _call_name(node) in ("query", "eval"):
                self.queries += [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        # A name bound to an expression that mentions columns stands for them ("col = 'region'",
        # "colors = df['region'].map(palette)"); filters (comparisons) do not count.
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                mentioned = self._mentioned(node.value)
                for target in targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name) and mentioned:
                            self.aliases.setdefault(name.id, set()).update(mentioned)

    def uses(self, col: str) -> bool:
        if self.tree is None:
            return bool(re.search(rf"""['"]{re.escape(col)}['"]|\.{re.escape(col)}\b""", self.text))
        return (col in self.strings or col in self.attributes
                or any(re.search(rf"(?<![\w]){re.escape(col)}(?![\w])", q) for q in self.queries))

    def plots_whole_frame(self, frames: Iterable[str]) -> bool:
        """df.plot(), df.hist(), sns.heatmap(df), plt.plot(df): every column, none by name."""
        frames = set(frames)
        if self.tree is None or not frames:
            return False
        bare = lambda node: isinstance(node, ast.Name) and node.id in frames  # noqa: E731
        for node in ast.walk(self.tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in _WHOLE_FRAME and (
                    bare(func.value) or (isinstance(func.value, ast.Attribute) and func.value.attr == "plot"
                                         and bare(func.value.value))):
                return True
            keywords = {k.arg for k in node.keywords}
            data = [*node.args, *(k.value for k in node.keywords if k.arg in ("data", "data_frame"))]
            if any(bare(a) for a in data) and not keywords & {"x", "y", "column", "columns", "values"}:
                return True
        return False

    def groups_on(self, col: str) -> bool:
        if self.tree is None:
            return False
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call):
                name = _call_name(node)
                arguments = [*node.args, *(k.value for k in node.keywords)]
                if name in _GROUPING and any(col in self._mentioned(a) for a in arguments):
                    return True
                if name in _VALUES_OF and isinstance(node.func, ast.Attribute) \
                        and col in self._mentioned(node.func.value):
                    return True
                if any(k.arg in _ENCODINGS and col in self._mentioned(k.value) for k in node.keywords):
                    return True
                if name in _PLOTTING and any(col in self._mentioned(a) for a in node.args):
                    return True
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)) and col in self._mentioned(node.iter):
                return True
        return False

    def _mentioned(self, node: ast.AST) -> set[str]:
        """Columns (string literals, attributes, aliases) an expression mentions, filters left out."""
        found: set[str] = set()
        todo = [node]
        while todo:
            item = todo.pop()
            if isinstance(item, ast.Compare):
                continue
            if isinstance(item, ast.Call) and _call_name(item) in ("isin", "query", "between", "eq", "ne"):
                continue
            if isinstance(item, ast.Constant) and isinstance(item.value, str):
                found.add(item.value.strip())
            elif isinstance(item, ast.Attribute):
                found.add(item.attr)
            elif isinstance(item, ast.Name):
                found |= self.aliases.get(item.id, set())
            todo.extend(ast.iter_child_nodes(item))
        return found


def _parse(text: str) -> ast.Module | None:
    for candidate in (text, re.sub(r"^\s*[%!].*$", "", text, flags=re.M)):
        try:
            return ast.parse(candidate)
        except (SyntaxError, ValueError):
            continue
    return None


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


# ---- bars: horizontal, sorted ---------------------------------------------------------------------

_BARH_IN_CODE = re.compile(r"\bbarh\b|orient(?:ation)?\s*=\s*['\"]h", re.I)


def _plotly_bars(plotly_json: list[dict]) -> list[dict]:
    return [t for fig in plotly_json for t in fig.get("data", [])
            if isinstance(t, dict) and t.get("type") in ("bar", "histogram", "funnel")]


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
        fix = ("Draw horizontal bars: px.bar(..., x=<values>, y=<categories>, orientation='h') "
               "(go.Bar(orientation='h')).")
    elif "seaborn" in code or "sns." in code:
        fix = "Draw horizontal bars: sns.barplot(data=..., x=<values>, y=<categories>, orient='h')."
    else:
        fix = ("Draw horizontal bars: plt.barh(categories, values) or ax.barh(...) (pandas: .plot.barh() or "
               "kind='barh'), with the categories on the y axis.")
    return Finding("horizontal", "horizontal bars", False,
                   "it asks for horizontal bars, but the bars are vertical", fix)


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


def _sorted(code: str, facts: list[dict], plotly_json: list[dict], by_label: bool,
            keys: list[list[str]] = ()) -> Finding | None:
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
        layout_orders += [str((layout.get(k) or {}).get("categoryorder", ""))
                          for k in layout if k[:5] in ("xaxis", "yaxis")]
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
    fix = ("Sort the values before plotting (e.g. totals = totals.sort_values(ascending=False), then plot "
           "totals.index against totals.values); categories that are numbers are placed by value, so "
           "convert them to text first.")
    if "plotly" in code:
        fix += " In plotly: fig.update_layout(xaxis={'categoryorder': 'total descending'}) (yaxis for horizontal bars)."
    return Finding("sorted", "sorted bars", False,
                   f"it asks for sorted bars, but the bar lengths along the axis are not in order ({sample})", fix)


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
