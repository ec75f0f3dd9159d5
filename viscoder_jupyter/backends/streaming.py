"""Streaming and stopping: token ids to text deltas, and where the first code block closes."""

from __future__ import annotations

from collections.abc import Iterable


class IncrementalDecoder:
    """Turns token ids, given a few at a time, into text deltas without decoding everything.

    Decodes only the last added chunk plus one chunk of context, and holds text back while it
    ends in an incomplete UTF-8 character. The deltas plus `flush()` join to
    ``tokenizer.decode(all_ids, skip_special_tokens=True)``.
    """

    def __init__(self, tokenizer, skip_special_tokens: bool = True):
        self.tokenizer = tokenizer
        self.skip_special_tokens = skip_special_tokens
        self.ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=self.skip_special_tokens)

    def add(self, ids: Iterable[int]) -> str:
        self.ids.extend(int(i) for i in ids)
        prefix_text = self._decode(self.ids[self._prefix : self._read])
        new_text = self._decode(self.ids[self._prefix :])
        if len(new_text) > len(prefix_text) and not new_text.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self.ids)
            return new_text[len(prefix_text) :]
        return ""

    def flush(self) -> str:
        prefix_text = self._decode(self.ids[self._prefix : self._read])
        new_text = self._decode(self.ids[self._prefix :])
        self._prefix = self._read = len(self.ids)
        return new_text[len(prefix_text) :]


_PYTHON_INFO = ("", "python", "py", "python3", "ipython", "ipython3")


class FenceWatcher:
    """Watches streamed text, line by line, for the end of the first Python code block.

    An opening fence is a line starting with ``` whose info string is python/py (or empty);
    blocks in other languages are skipped whole. Inside the Python block, a line starting with
    ``` closes it: `feed` returns True as soon as those three backticks arrive.
    """

    def __init__(self):
        self._line = ""
        self._state = "outside"  # outside | python | other
        self.done = False

    def feed(self, text: str) -> bool:
        if self.done or not text:
            return self.done
        lines = (self._line + text).split("\n")
        self._line = lines.pop()
        for line in lines:
            if self._complete_line(line.strip()):
                self.done = True
                return True
        if self._state == "python" and self._line.lstrip().startswith("```"):
            self.done = True
        return self.done

    def _complete_line(self, line: str) -> bool:
        fence = line.startswith("```")
        if self._state == "outside":
            if fence:
                info = line[3:].strip().split(maxsplit=1)
                self._state = "python" if (info[0].lower() if info else "") in _PYTHON_INFO else "other"
        elif self._state == "other":
            if fence:
                self._state = "outside"
        elif fence:  # python block closes
            return True
        return False
