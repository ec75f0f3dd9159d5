"""Describe DataFrames for the prompt, within a character budget.

The default is PandasPlotBench's "head" descriptor, the format VisCoder was trained
and evaluated on. Wide frames keep the format but show fewer columns and rows
before anything is cut.
"""

from __future__ import annotations

import re

import pandas as pd

from .settings import setting_default

DEFAULT_BUDGET = setting_default("frame_budget")  # VisCoder.frame_budget


def dtype_name(dtype) -> str:
    """The dtype as the benchmark's pandas (2.x) names it: text columns read from a CSV are
    `object` there, `str` from pandas 3 on. VisCoder only saw `object`."""
    name = str(dtype)
    return "object" if name == "str" else name


def describe_frame(df: pd.DataFrame, budget: int = DEFAULT_BUDGET) -> str:
    """The benchmark's head descriptor, shrunk to fit `budget` characters."""
    columns = [f"{_name(c)}: {dtype_name(t)}" for c, t in zip(df.columns, df.dtypes)]
    header = f"DataFrame with {df.shape[1]} columns and {df.shape[0]} rows\n"
    full = header + "Column names and types: " + ", ".join(columns) + "\nHead:\n" + _head_json(df, 5)
    if len(full) <= budget:
        return full

    # Too wide or long: list as many columns as half the budget allows, then a
    # head of the first columns with fewer rows, so the model still sees values.
    listed, used = [], 0
    for i, col in enumerate(columns):
        if used + len(col) + 2 > budget // 2:
            listed.append(f"... and {len(columns) - i} more columns")
            break
        listed.append(col)
        used += len(col) + 2
    head_budget = budget - len(header) - used - 80
    for rows, ncols in ((3, 20), (2, 10), (1, 5)):
        head = _head_json(df.iloc[:, :ncols], rows)
        if len(head) <= head_budget:
            break
    text = (
        header
        + "Column names and types: "
        + ", ".join(listed)
        + f"\nHead (first {min(ncols, df.shape[1])} columns):\n"
        + head
    )
    return text[:budget]


def describe_frames(frames: dict[str, pd.DataFrame], budget: int = DEFAULT_BUDGET) -> dict[str, str]:
    return {name: describe_frame(df, budget) for name, df in frames.items()}


def wide_frame_notes(frames: dict[str, pd.DataFrame], budget: int = DEFAULT_BUDGET) -> list[str]:
    """What the model will not see of frames too wide for the budget, said to the user."""
    notes = []
    for name, df in frames.items():
        text = describe_frame(df, budget)
        more = re.search(r"\.\.\. and (\d+) more columns\n?", text)
        head = re.search(r"\nHead \(first (\d+) columns\):", text)
        if not more and not head:
            continue
        listed = df.shape[1] - int(more.group(1)) if more else df.shape[1]
        valued = int(head.group(1)) if head else df.shape[1]
        notes.append(
            f"{name} is wide ({df.shape[1]} columns): the model sees the names of {listed} and sample "
            f"values of {valued}; name the columns to plot in the request"
        )
    return notes


def _name(column) -> str:
    """A column (or index) name on one line: its line breaks and control characters are escaped, so a
    name from the data cannot start a line of its own in the descriptor (or the prompt around it)."""
    text = _clean("/".join(map(str, column)) if isinstance(column, tuple) else str(column))
    return _BREAKS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


#: What str.splitlines (and a reader) takes for a line break, and the other control characters.
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _clean(text: str) -> str:
    # Lone surrogates (text read with errors="surrogateescape") cannot be encoded: escape them.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _head_json(df: pd.DataFrame, rows: int) -> str:
    head = df.head(rows)
    try:
        return head.to_json(date_format="iso", default_handler=str)
    except (UnicodeError, OverflowError):
        pass
    except ValueError:
        # Duplicate or MultiIndex columns cannot be keyed by name: fall back to split form.
        flat = head.copy()
        flat.columns = [_name(c) for c in flat.columns]
        try:
            return flat.to_json(orient="split", date_format="iso", default_handler=str)
        except (UnicodeError, OverflowError):
            pass
    # Values JSON cannot hold as they are (lone surrogates, undecodable bytes): show them as text.
    flat = head.map(lambda v: v if v is None or isinstance(v, (bool, int, float)) else _clean(str(v)))
    flat.columns = [_name(c) for c in flat.columns]
    flat.index = [_name(i) for i in flat.index]
    return flat.to_json(orient="split", date_format="iso", default_handler=str)
