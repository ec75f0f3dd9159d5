"""Fixing plotting code the user already has: the first turn of the conversation.

The loop is the one `%%viscoder` uses; only the first turn differs. The user's code
goes in as the assistant's earlier reply and the traceback (or what looks wrong) as
the user's report, the error-correction dialogue VisCoder was trained on, so every
later round is the ordinary feedback turn.
"""

from __future__ import annotations

from .errors import RequestError, strip_ansi
from .prompt import FEEDBACK, first_turn

TRACEBACK_CAP = 6000  # characters of a traceback the model reads (the end: where the error is)

DEFAULT_INTENT = "the plot that the code below is meant to draw"
FIX_NOTE = (
    "The above code runs, but the plot is not right: {note}\n"
    "Please provide a corrected version enclosed in ```python ... ```."
)


def clean_traceback(text: str) -> str:
    text = strip_ansi(text or "").strip("\n")
    return text if len(text) <= TRACEBACK_CAP else "...\n" + text[-TRACEBACK_CAP:]


def check_fixable(traceback: str, note: str) -> None:
    """A fix needs an error to fix or a note of what is wrong."""
    if not clean_traceback(traceback) and not (note or "").strip():
        raise RequestError(
            "Nothing to fix: the cell raised no error. Say what is wrong with the plot, e.g. 'labels overlap'."
        )


def fix_messages(source: str, traceback: str, note: str, descriptions: dict[str, str], lib: str) -> list[dict]:
    """First turn of a fix: the request, the user's code as the earlier reply, then the problem."""
    note = (note or "").strip()
    traceback = clean_traceback(traceback)
    check_fixable(traceback, note)
    messages = first_turn(note or DEFAULT_INTENT, descriptions, lib)
    messages.append({"role": "assistant", "content": f"```python\n{source.strip()}\n```"})
    if traceback:
        # VisCoder's own feedback turn; a note rides along under the traceback.
        error = f"{traceback}\nAlso, what is wrong with the plot: {note}" if note else traceback
        report = FEEDBACK.format(failed="failed", error=error)
    else:
        report = FIX_NOTE.format(note=note)
    messages.append({"role": "user", "content": report})
    return messages


def request_text(source: str, note: str) -> str:
    """A one-line description of the fix, for results and the inserted cell's header."""
    if note and note.strip():
        return note.strip()
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return f"make this run: {first[:80]}"
