"""The dialogue log without the user's values (`VisCoder.collect_values` off, the default).

The log keeps what makes a conversation worth training on (the request's words, the code, the
errors, the frames' names, columns, dtypes and shapes) and leaves out what the frames hold:

- each frame descriptor's sample rows become type placeholders such as <float64> (the rows stay,
  so the prompt keeps its shape), and the data facts of feedback turns are withheld whole;
- everywhere else (the request, the user's cell and its traceback, the model's code, the errors)
  a value of the frames becomes its column's placeholder: a traceback's `KeyError: 'North'` is
  `KeyError: '<object>'` in the log.

Which values: every value of the sample rows the model was shown, and the distinct texts of each
text column (its first VALUE_ROWS rows, up to DISTINCT_TEXTS of them): a cell names a category
the head never showed. Values that cannot identify anything and that code is full of stay: an
integer under 100 or a whole float under 100 (`figsize=(10, 6)`), a one-character text outside
quotes, a value equal to a column's or frame's name (names stay).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .context import describe_frames, dtype_name

HEAD_ROWS = 5  # the descriptor's head (core/context.py)
VALUE_ROWS = 10_000  # rows of a text column searched for its distinct values
DISTINCT_TEXTS = 500  # distinct values of one text column kept out at most
_HINTS = re.compile(r"(\n\nWhat the data says:\n).*?(\nPlease provide a corrected version)", re.DOTALL)
_HEAD = re.compile(r"\nHead[^\n]*:\n")


class ValueScrubber:
    """Replaces the frames' values in any text with their columns' type placeholders."""

    def __init__(self, frames: dict[str, Any]):
        names = {str(name) for name in frames}
        literals: dict[str, str] = {}  # the value's text -> its placeholder
        for frame in frames.values():
            names |= {_column_name(c) for c in frame.columns} | {str(c) for c in frame.columns}
            columns = [(frame.iloc[:, i], dtype_name(t)) for i, t in enumerate(frame.dtypes)]
            if not _is_range(frame.index):  # labelled rows: their labels are values too
                columns.append((frame.index.to_series(), dtype_name(frame.index.dtype)))
            for column, dtype in columns:
                for text in _texts(_values(column)):
                    literals.setdefault(text, f"<{dtype}>")
        for name in names:
            literals.pop(name, None)
        self._swap = {}
        patterns = []
        for text in sorted(literals, key=len, reverse=True):  # "North East" before "North"
            if len(text) == 1:  # a one-letter category only where it is a quoted text
                key = f"'{text}'"
                patterns.append(re.escape(key))
                patterns.append(re.escape(f'"{text}"'))
                self._swap[key] = self._swap[f'"{text}"'] = None, literals[text]
                continue
            start = r"(?<![\w.])" if text[0].isalnum() or text[0] == "_" else ""
            end = r"(?![\w])" if text[-1].isalnum() or text[-1] == "_" else ""
            patterns.append(start + re.escape(text) + end)
            self._swap[text] = literals[text], None
        self._pattern = re.compile("|".join(patterns)) if patterns else None

    def __call__(self, text: str) -> str:
        if not text or self._pattern is None:
            return text
        return self._pattern.sub(self._placeholder, text)

    def _placeholder(self, match: re.Match) -> str:
        bare, quoted = self._swap[match.group(0)]
        return bare if bare is not None else match.group(0)[0] + quoted + match.group(0)[-1]


def _values(column) -> list:
    """The column's values worth keeping out: its head's, and a text column's distinct ones."""
    values = list(column.iloc[:HEAD_ROWS])
    if column.dtype == object or str(column.dtype) in ("category", "string", "str"):
        try:
            values += list(column.iloc[:VALUE_ROWS].drop_duplicates().iloc[:DISTINCT_TEXTS])
        except TypeError:  # unhashable values (lists, dicts): the head's are enough
            pass
    return values


def _texts(values) -> set[str]:
    """The ways a value is written in code, tracebacks and JSON."""
    import pandas as pd

    found = set()
    for value in values:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if isinstance(value, str):
            if value.strip():
                found.add(value)
        elif isinstance(value, bool):
            continue
        elif isinstance(value, (int, float)) or hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iuf":
            number = float(value)
            if math.isfinite(number) and (abs(number) >= 100 or number != int(number)):
                found |= {repr(value.item() if hasattr(value, "item") else value), f"{number:g}"}
                if number == int(number):
                    found.add(str(int(number)))
        elif isinstance(value, pd.Timestamp):
            found |= {str(value), value.isoformat()}
            if value == value.normalize():
                found.add(value.date().isoformat())
        else:
            text = str(value)
            if len(text) > 1:
                found.add(text)
    return {t for t in found if t and not t.isspace()}


def without_values(messages: list[dict], frames: dict, budget: int, scrub: ValueScrubber | None = None) -> list[dict]:
    """The messages with each frame descriptor's sample values replaced by type placeholders, the
    data facts of feedback turns withheld, and the frames' values in the rest replaced too."""
    scrub = scrub or ValueScrubber(frames)
    swaps = {}
    for name, text in describe_frames(frames, budget).items():
        swaps[text] = placeholder_descriptor(text, frames[name])
    descriptors = re.compile("(" + "|".join(re.escape(t) for t in sorted(swaps, key=len, reverse=True)) + ")")
    out = []
    for message in messages:
        content = _HINTS.sub(r"\1<withheld: facts from the live frames>\2", message["content"])
        parts = descriptors.split(content) if swaps else [content]  # odd parts: the descriptors
        content = "".join(swaps[part] if i % 2 else scrub(part) for i, part in enumerate(parts))
        out.append({**message, "content": content})
    return out


def placeholder_descriptor(descriptor: str, frame) -> str:
    """The descriptor with its head's values as <dtype> placeholders (the rows kept, so the
    prompt keeps its shape); without a head it can read, nothing after the column list."""
    match = _HEAD.search(descriptor)
    if match is None:
        return "\n".join(descriptor.split("\n")[:2]) + "\nHead: <values withheld>"
    try:
        head = json.loads(descriptor[match.end() :])
    except ValueError:  # cut short by the budget
        return descriptor[: match.end()] + "<values withheld>"
    types = {}  # a head's column key (to_json's, or the descriptor's "a/b" for a tuple) -> placeholder
    for column, dtype in zip(frame.columns, frame.dtypes):
        types[str(column)] = types[_column_name(column)] = f"<{dtype_name(dtype)}>"
    index = f"<{dtype_name(frame.index.dtype)}>"
    plain_index = _is_range(frame.index)
    if isinstance(head, dict) and "data" in head and "columns" in head:  # split orient
        columns = head["columns"]
        head["data"] = [[types.get(str(c), "<value>") for c in columns] for _ in head["data"]]
        if not plain_index:
            head["index"] = [f"{index} {i}" for i in range(len(head.get("index", [])))]
    elif isinstance(head, dict):  # column -> {index label -> value}
        head = {
            column: {
                (label if plain_index else f"{index} {i}"): types.get(column, "<value>")
                for i, label in enumerate(values)
            }
            for column, values in head.items()
        }
    else:
        return descriptor[: match.end()] + "<values withheld>"
    return descriptor[: match.end()] + json.dumps(head, ensure_ascii=False, separators=(",", ":"))


def _column_name(column) -> str:
    return "/".join(map(str, column)) if isinstance(column, tuple) else str(column)


def _is_range(index) -> bool:
    import pandas as pd

    return isinstance(index, pd.RangeIndex)
