"""Which DataFrames a request is about, chosen from a namespace."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import RequestError


def _is_frame(value: Any) -> bool:
    # Avoid importing pandas just to look: a namespace without pandas has no frames.
    import sys

    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, pd.DataFrame)


def frames_in(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """Public DataFrame variables (IPython's `_`, `_12`, `__` caches left out)."""
    return {k: v for k, v in namespace.items() if not k.startswith("_") and _is_frame(v)}


def select_frames(namespace: Mapping[str, Any], names: list[str], request: str) -> dict[str, Any]:
    """Named frames, else the only frame, else the frames the request mentions."""
    if names:
        chosen = {}
        for name in names:
            if name not in namespace:
                available = ", ".join(sorted(frames_in(namespace))) or "none"
                raise RequestError(f"No variable named {name!r}. DataFrames in this notebook: {available}.")
            if not _is_frame(namespace[name]):
                kind = type(namespace[name]).__name__
                raise RequestError(
                    f"{name!r} is a {kind}, not a pandas DataFrame. "
                    f"Pass a DataFrame name, e.g. convert it first: {name}_df = pd.DataFrame({name})."
                )
            chosen[name] = namespace[name]
        return check_frames(chosen)

    candidates = frames_in(namespace)
    if not candidates:
        raise RequestError(
            "No DataFrame found in the notebook. Load one first, e.g. df = pd.read_csv('data.csv'), "
            "then run %%viscoder again (or name it: %%viscoder df)."
        )
    if len(candidates) == 1:
        return check_frames(candidates)
    mentioned = {k: v for k, v in candidates.items() if re.search(rf"(?<!\w){re.escape(k)}(?!\w)", request)}
    if mentioned:
        return check_frames(mentioned)
    by_columns = _ranked_by_named_columns(candidates, request)
    if len(by_columns) == 1 or (by_columns and by_columns[0][0] > by_columns[1][0]):
        name = by_columns[0][1]  # the one frame whose columns the request names
        return check_frames({name: candidates[name]})
    suggestion = (
        by_columns[0][1]
        if by_columns
        else next((k for k in sorted(candidates) if not candidates[k].empty), sorted(candidates)[0])
    )
    raise RequestError(
        f"Several DataFrames are defined ({', '.join(sorted(candidates))}); "
        "say which to plot, e.g. %%viscoder " + suggestion
    )


def _ranked_by_named_columns(candidates: Mapping[str, Any], request: str) -> list[tuple[int, str]]:
    """(columns the request names, frame name), most first; non-empty frames that match only."""
    words = request.lower()
    ranked = []
    for name, df in candidates.items():
        if df.empty:
            continue
        hits = sum(
            1
            for column in map(str, df.columns)
            if len(column) >= 3 and re.search(rf"(?<!\w){re.escape(column.lower())}(?!\w)", words)
        )
        if hits:
            ranked.append((hits, name))
    return sorted(ranked, key=lambda item: (-item[0], item[1]))


def check_frames(frames: Mapping[str, Any]) -> dict[str, Any]:
    """Frames must be non-empty DataFrames under names the generated code can use."""
    if not frames:
        raise RequestError("No DataFrame given: pass a DataFrame or a dict of name to DataFrame.")
    for name, df in frames.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise RequestError(f"{name!r} is not a valid Python variable name for a DataFrame.")
        if not _is_frame(df):
            raise RequestError(f"{name!r} is a {type(df).__name__}, not a pandas DataFrame.")
        if df.empty:
            raise RequestError(
                f"DataFrame {name!r} is empty ({df.shape[0]} rows, {df.shape[1]} columns): nothing to plot."
            )
    return dict(frames)


def frames_for_code(namespace: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The DataFrames the code names; else the only one in the namespace."""
    candidates = frames_in(namespace)
    if not candidates:
        raise RequestError(
            "No DataFrame in this notebook's kernel: VisCoder fixes plots of pandas DataFrames. "
            "Run the cell that loads your data first."
        )
    named = {k: v for k, v in candidates.items() if re.search(rf"(?<!\w){re.escape(k)}(?!\w)", source)}
    if named:
        return check_frames(named)
    if len(candidates) == 1:
        return check_frames(candidates)
    raise RequestError(
        f"The code names none of the DataFrames in the kernel ({', '.join(sorted(candidates))}); "
        "mention the one it plots."
    )
