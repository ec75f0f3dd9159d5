"""Feedback that sees the data: what the model needs from the live frames after a failure.

VisCoder's own feedback is the traceback alone, and its paper notes the model does not
reassess the DataFrame while debugging. Here an error about a column, an attribute, a
dtype or a value brings the real column names near the one used, dtypes and a few
values; an error that smells of a changed API brings the installed library versions;
an empty figure brings the values the code filtered on.
"""

from __future__ import annotations

import ast
import difflib
import re
from importlib import metadata
from typing import Any

from .errors import AttemptError, CodeRaised, FigureProblem

LIBRARIES = ("pandas", "matplotlib", "seaborn", "plotly", "numpy")
MAX_HINT_CHARS = 1500
_DATA_ERRORS = {
    "KeyError",
    "ValueError",
    "TypeError",
    "IndexError",
    "AttributeError",
    "UFuncTypeError",
    "DTypePromotionError",
    "InvalidIndexError",
}
_API_SMELLS = re.compile(
    r"unexpected keyword argument|has no attribute|cannot import name|No module named|deprecated|"
    r"is not a valid (value|package style)|not found in the style library|got an unexpected|"
    r"takes \d+ positional argument|missing \d+ required positional",
    re.I,
)


def data_hints(error: AttemptError | None, code: str, frames: dict[str, Any]) -> str:
    """Extra lines for the feedback turn, or '' when the data has nothing to add."""
    if error is None:
        return ""
    hints: list[str] = []
    if isinstance(error, CodeRaised):
        text = f"{error.ename}: {error.evalue}"
        if error.ename in _DATA_ERRORS:
            hints += _missing_names(text, frames) or _columns_used(code, frames)
        if _API_SMELLS.search(text) or error.ename in ("ImportError", "ModuleNotFoundError"):
            hints += _api_hints(text)
    elif isinstance(error, FigureProblem) and error.ename == "EmptyFigure":
        hints += _filters_matching_nothing(code, frames) or _columns_used(code, frames)
    body = "\n".join(dict.fromkeys(hints))  # in order, once
    return body[:MAX_HINT_CHARS]


# ---- columns --------------------------------------------------------------------------------


def _frames(frames: dict[str, Any]):
    for name, frame in frames.items():
        if hasattr(frame, "columns"):
            yield name, frame


def _missing_names(text: str, frames: dict[str, Any]) -> list[str]:
    """`KeyError: 'Colmn'`, `no attribute 'Colmn'`, `['a', 'b'] not in index` -> real columns near them."""
    quoted = re.findall(r"""['"]([^'"\n]{1,80})['"]""", text)
    hints = []
    for name, frame in _frames(frames):
        columns = [str(c) for c in frame.columns]
        for word in quoted:
            if word in columns or word in ("DataFrame", "Series", "str", "float", "int", "object"):
                continue
            close = difflib.get_close_matches(word, columns, n=3, cutoff=0.6)
            close += [c for c in columns if c.lower() == word.lower() and c not in close]
            if close or _names_a_column(text):
                hints.append(
                    f"`{name}` has no column {word!r}"
                    + (f"; the closest are {', '.join(map(repr, close))}." if close else ".")
                )
                hints.append(_column_list(name, frame))
    return hints


def _names_a_column(text: str) -> bool:
    return text.startswith("KeyError") or "not in index" in text or "DataFrame' object has no attribute" in text


def _columns_used(code: str, frames: dict[str, Any]) -> list[str]:
    """dtype and a few values of each column the code names as a string."""
    strings = _string_constants(code)
    hints = []
    for name, frame in _frames(frames):
        used = [c for c in frame.columns if str(c) in strings]
        if not used:
            continue
        hints.append(f"`{name}` has {len(frame)} rows and {len(frame.columns)} columns.")
        for column in used[:6]:
            hints.append(_column_facts(name, frame, column))
    return hints


def _column_list(name: str, frame) -> str:
    shown = [f"{c!r} ({frame[c].dtype})" if frame.columns.is_unique else repr(c) for c in list(frame.columns)[:40]]
    more = f" and {len(frame.columns) - 40} more" if len(frame.columns) > 40 else ""
    return f"The columns of `{name}` are: {', '.join(shown)}{more}."


def _column_facts(name: str, frame, column) -> str:
    series = frame[column]
    if getattr(series, "ndim", 1) != 1:
        return f"`{name}[{column!r}]` is not one column (duplicate name)."
    values = series.dropna().unique()[:5]
    sample = ", ".join(_short(v) for v in values)
    nulls = int(series.isna().sum())
    return (
        f"`{name}[{column!r}]`: dtype {series.dtype}, {series.nunique()} distinct values, "
        f"{nulls} missing; e.g. {sample}."
    )


def _short(value) -> str:
    text = repr(value.item() if hasattr(value, "item") else value)
    return text if len(text) <= 40 else text[:37] + "..."


def _string_constants(code: str) -> set[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set(re.findall(r"""['"]([^'"\n]{1,80})['"]""", code))
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


# ---- filters that keep nothing ----------------------------------------------------------------


def _filters_matching_nothing(code: str, frames: dict[str, Any]) -> list[str]:
    """`df[df['Country'] == 'USA']` where no row equals 'USA': say which values there are."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    hints = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare) or len(node.ops) != 1:
            continue
        column, wanted = _column_of(node.left), _literals(node.comparators[0])
        if column is None or not wanted or not isinstance(node.ops[0], (ast.Eq, ast.In)):
            continue
        for name, frame in _frames(frames):
            if column in frame.columns and getattr(frame[column], "ndim", 1) == 1:
                present = set(frame[column].dropna().unique().tolist())
                absent = [w for w in wanted if w not in present]
                if absent:
                    hints.append(f"No row of `{name}[{column!r}]` equals {', '.join(map(repr, absent))}.")
                    hints.append(_column_facts(name, frame, column))
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        if isinstance(call.func, ast.Attribute) and call.func.attr == "isin" and call.args:
            column, wanted = _column_of(call.func.value), _literals(call.args[0])
            for name, frame in _frames(frames):
                if column in getattr(frame, "columns", []) and wanted:
                    present = set(frame[column].dropna().unique().tolist())
                    if not present & set(wanted):
                        hints.append(f"No row of `{name}[{column!r}]` is in {wanted!r}.")
                        hints.append(_column_facts(name, frame, column))
    return hints


def _column_of(node: ast.AST) -> str | None:
    """`x['col']` or `x.col` -> 'col'."""
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        return node.slice.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.attr
    return None


def _literals(node: ast.AST) -> list:
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float)):
        return [node.value]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [e.value for e in node.elts if isinstance(e, ast.Constant)]
    return []


# ---- library versions -------------------------------------------------------------------------


def installed_versions() -> str:
    found = []
    for name in LIBRARIES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(found)


def _api_hints(text: str) -> list[str]:
    hints = [f"Installed versions: {installed_versions()}. Use the current API of these versions."]
    if "style" in text:
        try:
            import matplotlib.pyplot as plt

            hints.append("Matplotlib styles available: " + ", ".join(sorted(plt.style.available)) + ".")
        except Exception:  # noqa: BLE001 - a hint, never a failure
            pass
    return hints
