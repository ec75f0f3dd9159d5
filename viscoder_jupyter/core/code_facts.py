"""What plotting code uses, read from its syntax tree (text search where it does not parse):
the columns it names, groups on or maps to an encoding, and whether it plots whole frames."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

# Calls whose arguments group on a column, and calls on a column that list its values.
_GROUPING = {
    "groupby",
    "pivot",
    "pivot_table",
    "crosstab",
    "set_index",
    "unstack",
    "stack",
    "melt",
    "resample",
    "Grouper",
    "cut",
    "qcut",
    "factorize",
    "Categorical",
    "get_dummies",
}
_VALUES_OF = {"value_counts", "unique", "drop_duplicates"}
# Keyword arguments that map a column to an encoding (seaborn, plotly express, pandas .plot).
_ENCODINGS = {
    "x",
    "y",
    "hue",
    "color",
    "c",
    "col",
    "row",
    "style",
    "size",
    "s",
    "sizes",
    "facet_col",
    "facet_row",
    "symbol",
    "line_group",
    "line_dash",
    "pattern_shape",
    "columns",
    "index",
    "by",
    "labels",
    "names",
    "animation_frame",
    "level",
    "id_vars",
    "groups",
    "path",
    "parents",
    "ids",
    "dimensions",
    "tick_label",
    "xticklabels",
    "yticklabels",
    "x_vars",
    "y_vars",
    "values",
}
# Calls whose positional arguments are the data drawn (or the tick labels shown).
_PLOTTING = {
    "bar",
    "barh",
    "plot",
    "scatter",
    "pie",
    "boxplot",
    "violinplot",
    "step",
    "stem",
    "fill_between",
    "fill_betweenx",
    "stackplot",
    "hist",
    "errorbar",
    "hlines",
    "vlines",
    "barplot",
    "countplot",
    "lineplot",
    "scatterplot",
    "stripplot",
    "swarmplot",
    "pointplot",
    "catplot",
    "relplot",
    "boxenplot",
    "line",
    "area",
    "Bar",
    "Scatter",
    "Pie",
    "Box",
    "Histogram",
    "xticks",
    "yticks",
    "set_xticks",
    "set_yticks",
    "set_xticklabels",
    "set_yticklabels",
    "legend",
    "heatmap",
    "treemap",
    "sunburst",
}
# Access to columns by position or all at once: which columns are used is not in the text.
ANY_COLUMNS = re.compile(r"\.columns\b|\.iloc\b|select_dtypes|\.melt\(|pairplot|\.corr\(|\.describe\(|\.T\b")
# Pandas methods that plot every column of the frame they are called on (df.plot(), df.hist()).
_WHOLE_FRAME = {"plot", "hist", "boxplot", "area", "line", "bar", "barh", "kde", "density", "box", "scatter_matrix"}


class Code:
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
        return (
            col in self.strings
            or col in self.attributes
            or any(re.search(rf"(?<![\w]){re.escape(col)}(?![\w])", q) for q in self.queries)
        )

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
            if (
                isinstance(func, ast.Attribute)
                and func.attr in _WHOLE_FRAME
                and (
                    bare(func.value)
                    or (isinstance(func.value, ast.Attribute) and func.value.attr == "plot" and bare(func.value.value))
                )
            ):
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
                if (
                    name in _VALUES_OF
                    and isinstance(node.func, ast.Attribute)
                    and col in self._mentioned(node.func.value)
                ):
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
