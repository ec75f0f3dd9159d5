"""Reading a request: which columns it names, groups by ("by region") or sorts by, and whether
it asks for horizontal or sorted bars. Pure text rules; request_checks.py holds them against
the code and the figure."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Words that are also column names but, unquoted, mostly mean themselves ("the total sales",
# "count of orders"): requiring such a column would fail figures that are right.
_GENERIC = {
    "all",
    "amount",
    "average",
    "avg",
    "bar",
    "bars",
    "chart",
    "color",
    "colour",
    "count",
    "data",
    "label",
    "line",
    "max",
    "mean",
    "median",
    "min",
    "number",
    "other",
    "percent",
    "percentage",
    "plot",
    "rank",
    "rate",
    "ratio",
    "share",
    "size",
    "sum",
    "title",
    "top",
    "total",
    "type",
    "value",
    "values",
    "index",
    "change",
}
_BY = re.compile(r"\b(?:by|per|for each|for every|each)\s+(?:the\s+|each\s+|every\s+|their\s+|its\s+)?", re.I)
# "sorted by revenue", "top 10 countries by population": the column is a measure, not a grouping.
_NOT_GROUPING = re.compile(
    r"(?:\b(?:sort\w*|order\w*|rank\w*|divided|multiplied|normali[sz]ed|scaled|weighted|followed|filtered|"
    r"(?:top|bottom)(?:\s+\d+)?(?:\s+[\w-]+){1,2})\s*)$",
    re.I,
)
_LIST_SEPARATOR = re.compile(r"\s*(?:,\s*(?:and\s+|or\s+)?|\s(?:and|or|&)\s+|/\s*)(?:the\s+)?", re.I)
HORIZONTAL = re.compile(
    r"\bhorizontal(?:ly)?(?:[\s-]+(?:oriented|stacked|grouped|sorted|aligned|ranked))?[\s-]+bar|"
    r"\bbars?\b(?:\s+(?:should|must|to|be|are|is|drawn|displayed|shown|plotted|oriented|laid|running|going|"
    r"that|which|made|out|appear|run|go)){0,3}\s+horizontal(?:ly)?\b(?!\s+(?:in|across|along|side|next|row)\b)|"
    r"\bbarh\b|\bbar\w*\b[^.\n]{0,40}\bhorizontal(?:ly)?\s+orient",
    re.I,
)
SORTED = re.compile(
    r"\b(?:sort(?:ed|ing|s)?|ascending|descending|ordered|rank(?:ed|ing)?|in\s+(?:\w+\s+)?order\s+of|"
    r"(?:largest|highest|biggest|most|greatest|smallest|lowest|least|fewest)\s+to\s+(?:the\s+)?"
    r"(?:largest|highest|biggest|most|greatest|smallest|lowest|least|fewest))\b",
    re.I,
)
_SORT_KEY = re.compile(
    r"\b(?:sort\w*|order\w*|rank\w*|arrange\w*)\s+(?:[\w-]+\s+){0,2}?(?:by|on|of)\s+(?:the\s+)?", re.I
)
BY_LABEL = re.compile(
    r"\balphabetic\w*|\bchronolog\w*|\b(?:sort\w*|order\w*)\s+(?:by|on)\s+(?:the\s+)?"
    r"(?:name|names|date|dates|time|month|months|year|years|day|days|label|labels)\b",
    re.I,
)


def column_pattern(col: str) -> str:
    """A column's name as a request may write it: any case, '_' or space alike, plural allowed."""
    body = r"[\s_]+".join(re.escape(part) for part in re.split(r"[\s_]+", col.strip()) if part)
    plural = r"(?:s|es)?" if col[-1:].isalpha() else ""
    return rf"(?<![\w]){body}{plural}(?![\w])"


def named_columns(request: str, columns: Iterable[str]) -> list[tuple[int, int, set[str]]]:
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
        for m in re.finditer(column_pattern(col), request, re.I):
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
    r"encod|mark|hue|plott|show|display|sum|count|averag|tint|styl)\w*\s*$",
    re.I,
)
_PARTICIPLE = re.compile(r"\b(?:\w+ed|given|shown|driven|made|drawn|written|seen|taken|done|caused)\s*$", re.I)


def grouping_columns(request: str, columns: Iterable[str]) -> list[tuple[str, str]]:
    """The columns after "by", "per", "for each", "each" (with "and"/"," lists): (column, the
    words that asked for it)."""
    columns = [c for c in columns if isinstance(c, str) and c.strip()]
    patterns = sorted(((c, re.compile(column_pattern(c), re.I)) for c in columns), key=lambda cp: -len(cp[0]))
    found: list[tuple[str, str]] = []
    for trigger in _BY.finditer(request):
        before = request[max(0, trigger.start() - 60) : trigger.start()]
        if _NOT_GROUPING.search(before):
            continue
        if (
            trigger.group(0).lower().startswith("by")
            and _PARTICIPLE.search(before)
            and not _GROUPING_VERBS.search(before)
        ):
            continue
        pos = trigger.end()
        while True:
            col, end = _column_at(request, pos, patterns)
            if col is None:
                break
            if col not in [c for c, _ in found]:
                found.append((col, request[trigger.start() : end].strip()))
            sep = _LIST_SEPARATOR.match(request, end)
            if not sep:
                break
            pos = sep.end()
    return found


def sort_keys(request: str, columns: Iterable[str]) -> list[str]:
    """The columns a request sorts by ("sorted by year", "in order of region")."""
    patterns = sorted(
        ((c, re.compile(column_pattern(c), re.I)) for c in columns if isinstance(c, str) and c.strip()),
        key=lambda cp: -len(cp[0]),
    )
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
