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


#: A block of this many lines (or more) read 3 times running is a loop (shorter ones: 4 times).
_LONG_BLOCK_LINES = 6
_MAX_BLOCK_LINES = 40
#: A line this long whose tail is one short stretch over and over ("Revenue Revenue ...").
_LONG_LINE_CHARS = 400
_MAX_PERIOD_CHARS = 80


class RepetitionWatcher:
    """Watches streamed text for a reply stuck in a loop: the same line 6 times running, the same
    block of 2-5 lines 4 times, of 6 or more lines 3 times, or one line whose last 320+ characters
    repeat a stretch of at most 80. A block must hold a line of 4+ characters: blank lines, lone
    brackets and `0,` do repeat in code. A block of lines ending in "," (items of a literal list)
    needs 10 copies: ['North',\\n 'South', 'North', 'South', ...] can be data. Measured on 563 recorded replies of
    the offline model (benchmarks/replies): a model that recovers wrote one line 4 times and one
    8-line block twice, so those are let through; a loop that runs to the token limit never stops.

    `feed` returns True once the reply loops; then `kept` is the text up to the end of the loop's
    first copy, `repeated` the block that repeats (its first line, shortened) and `copies` how many
    times it was read.
    """

    def __init__(self):
        self._text: list[str] = []
        self._lines: list[str] = []  # complete lines, right-stripped
        self._line = ""
        self._offsets: list[int] = []  # where each complete line starts in the text
        self._length = 0
        self._checked_line_at = 0
        self.looping = False
        self.kept = ""
        self.repeated = ""
        self.copies = 0

    def feed(self, text: str) -> bool:
        if self.looping or not text:
            return self.looping
        self._text.append(text)
        for piece in text.splitlines(keepends=True):
            if piece.endswith(("\n", "\r")):
                self._offsets.append(self._length - len(self._line))
                self._lines.append((self._line + piece).rstrip())
                self._line = ""
                self._length += len(piece)
                if self._check_lines():
                    return True
            else:
                self._line += piece
                self._length += len(piece)
        if len(self._line) >= _LONG_LINE_CHARS and len(self._line) - self._checked_line_at >= 40:
            self._checked_line_at = len(self._line)
            return self._check_long_line()
        return False

    def _check_lines(self) -> bool:
        lines = self._lines
        for size in range(1, min(_MAX_BLOCK_LINES, len(lines) // 2) + 1):
            block = lines[-size:]
            if not any(len(line.strip()) >= 4 for line in block):
                continue
            if all(line.endswith(",") for line in block):  # items of a literal: data repeats
                needed = 10
            else:
                needed = 3 if size >= _LONG_BLOCK_LINES else 4 if size > 1 else 6
            copies = 1
            while copies < needed and len(lines) >= (copies + 1) * size:
                if lines[-(copies + 1) * size : -copies * size] != block:
                    break
                copies += 1
            if copies >= needed:
                first = len(lines) - copies * size  # the loop's first copy starts at this line
                self._stop("".join(self._text)[: self._offsets[first + size]], block, copies)
                return True
        return False

    def _check_long_line(self) -> bool:
        line = self._line
        span = _LONG_LINE_CHARS - _MAX_PERIOD_CHARS
        for period in range(1, _MAX_PERIOD_CHARS + 1):
            if line[-span:] == line[-span - period : -period] and line[-period:].strip():
                text = "".join(self._text)
                self._stop(text[: len(text) - span], [line[-period:]], span // period + 1)
                return True
        return False

    def _stop(self, kept: str, block: list[str], copies: int) -> None:
        self.looping, self.kept, self.copies = True, kept, copies
        first = next((line.strip() for line in block if line.strip()), "")
        self.repeated = first if len(first) <= 60 else first[:57] + "..."
        if len(block) > 1:
            self.repeated += f" (and {len(block) - 1} more line{'s' * (len(block) > 2)})"
