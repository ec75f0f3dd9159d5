"""Every error the package raises, under one base class.

Two families: errors in what the user asked (shown as one line, no traceback),
and failed attempts (fed back to the model as a self-debug turn).
"""

from __future__ import annotations

import re
from typing import Any

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


#: The longest one-line summary of an error (status lines, the panel's list of attempts).
ONE_LINE_LIMIT = 300


def one_line(text: str, limit: int = ONE_LINE_LIMIT) -> str:
    """`text` on one line, never cut inside a line of it: an error whose value spans lines (a
    Series in "... not 0     North\n1     South") reads "not 0 North | 1 South | ...": each line
    with its spacing collapsed, whole lines joined by " | " while they fit, then how many are left.
    One line longer than `limit` alone is shortened with an ellipsis."""
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    if len(lines) == 1:
        return lines[0] if len(lines[0]) <= limit else lines[0][: limit - 3].rstrip() + "..."
    shown = lines[0] if len(lines[0]) <= limit else lines[0][: limit - 3].rstrip() + "..."
    for index, line in enumerate(lines[1:], start=1):
        left = len(lines) - index
        more = f" | ... ({left} more line{'s' * (left > 1)})"
        if len(shown) + 3 + len(line) + (len(more) if left > 1 else 0) > limit:
            return shown + more
        shown += " | " + line
    return shown


class ViscoderError(Exception):
    """Base of everything viscoder_jupyter raises on purpose."""


class RequestError(ViscoderError, ValueError):
    """The request cannot be served as given: bad flag, unknown frame, empty text."""


class NoFrames(RequestError):
    """No DataFrame to work on could be found for the code to fix (the sidebar says so apart)."""


class BackendUnavailable(ViscoderError):
    """The model backend cannot run here; the message says what to install or set."""


class BackendFailed(BackendUnavailable):
    """The backend broke while writing a reply (a server that went away, a crash).

    Its message says what happened; each front end adds how to try again there
    (`retry_hint`), since that action differs (run the cell, press Fix)."""


class ContextFull(BackendFailed):
    """The conversation no longer fits the context the model was loaded with. On a first turn
    that is the request's fault (too many or too wide frames); after failed attempts it only
    ends the self-debug rounds."""


class PromptOverBudget(BackendUnavailable):
    """The attempt's time budget ran out while the model was still reading the prompt: no reply
    to feed back, so the request stops with what to change."""

    def __init__(self, budget: float, prompt_tokens: int | None):
        size = f" ({prompt_tokens} tokens)" if prompt_tokens else ""
        super().__init__(
            f"Reading the prompt{size} took the whole {budget:g} s budget of an attempt, before the model "
            "wrote anything. Raise the budget (--attempt-budget, `%config VisCoder.attempt_budget`, or the "
            "sidebar's Attempt budget setting), or ask about fewer or narrower frames."
        )


#: How the backends' hints name the model setting (hf_hub, gguf_files). A front end that chose the
#: model itself names its own setting instead (`naming_the_model_setting`): the sidebar's.
MODEL_SETTING = "`--model` (or the VISCODER_MODEL environment variable, or `%config VisCoder.model`)"


def naming_the_model_setting(message: str, setting: str) -> str:
    """`message` with the model setting called `setting` ("the sidebar's Model setting")."""
    return message.replace(MODEL_SETTING, setting)


def with_retry_hint(exc: ViscoderError, hint: str) -> str:
    """The error's message, plus `hint` where trying again is the way out."""
    return f"{exc} {hint}" if isinstance(exc, BackendFailed) else str(exc)


class ReplayExhausted(BackendUnavailable):
    """A replay file has served all its recorded replies."""


class AttemptError(ViscoderError):
    """One attempt failed; its text becomes the model's feedback."""

    ename: str = "Error"

    def feedback_text(self) -> str:
        """What the model reads about this failure."""
        return str(self)

    def one_line(self) -> str:
        return one_line(f"{self.ename}: {self}")


class CodeRaised(AttemptError):
    """The generated code raised in the child kernel."""

    def __init__(self, ename: str, evalue: str, traceback: str, runtime_facts: tuple[str, ...] = ()):
        super().__init__(evalue)
        self.ename = ename
        self.evalue = evalue
        self.traceback = traceback
        # What the child saw at the failure (child/_viscoder_error_facts.py): fed back with `runtime_facts`.
        self.runtime_facts = tuple(runtime_facts)

    @classmethod
    def from_reply(cls, content: dict[str, Any]) -> CodeRaised:
        """Build from an execute_reply or error message content."""
        tb = strip_ansi("\n".join(content.get("traceback") or []))
        return cls(content.get("ename", "Error"), content.get("evalue", ""), tb)

    def feedback_text(self) -> str:
        return self.traceback or f"{self.ename}: {self.evalue}"

    def one_line(self) -> str:
        return one_line(f"{self.ename}: {self.evalue}")

    def __reduce__(self):
        return (type(self), (self.ename, self.evalue, self.traceback, self.runtime_facts))


class ExecutionTimeout(AttemptError, TimeoutError):
    ename = "TimeoutError"

    def __init__(self, seconds: float):
        super().__init__(
            f"The code did not finish within {seconds:g} seconds and was interrupted. "
            "Make it faster: avoid loops over rows and plotting millions of points one by one."
        )
        self.seconds = seconds

    def __reduce__(self):
        return (type(self), (self.seconds,))


class ChildKernelDied(AttemptError, RuntimeError):
    ename = "KernelDied"

    def __init__(self, detail: str = ""):
        super().__init__(
            "The Python process running the code crashed"
            + (f" ({detail})" if detail else "")
            + ". Avoid os._exit, sys.exit and code that exhausts memory."
        )


class FramesChanged(AttemptError):
    """The code changed (or deleted) a frame it was given: run in the notebook, it would change
    the user's data. A hard failure: such code is never the answer."""

    ename = "FrameChanged"

    def __init__(self, changes: dict[str, str]):
        self.changes = dict(changes)
        names = ", ".join(f"`{name}`" for name in changes)
        what = "; ".join(f"`{name}`: {how}" for name, how in changes.items() if how)
        first = next(iter(changes))
        super().__init__(
            f"The code changed the DataFrame {names} it was given"
            + (f" ({what})" if what else "")
            + ". In the notebook this would change the user's data. Work on a copy: start with "
            f"`data = {first}.copy()` and change and plot `data`, leaving `{first}` as it is."
        )

    def __reduce__(self):
        return (type(self), (self.changes,))


class ReplyOverBudget(AttemptError):
    """The model was still writing when the attempt's time budget (settings.attempt_budget) ran
    out: the reply was stopped, and the model is asked for shorter code."""

    ename = "ReplyTooLong"

    def __init__(self, budget: float, tokens: int):
        super().__init__(
            f"The reply ran past the {budget:g} s budget for one attempt ({tokens} tokens written) and was "
            "stopped: write shorter code, only the lines the plot needs, with no comments and no data "
            "typed in by hand."
        )
        self.budget, self.tokens = budget, tokens

    def __reduce__(self):
        return (type(self), (self.budget, self.tokens))


class NoCodeInReply(AttemptError):
    ename = "NoCode"

    def __init__(self):
        super().__init__(
            "The reply contained no Python code. Reply with the complete code enclosed in ```python ... ```."
        )


class NoFigure(AttemptError):
    ename = "NoFigure"

    def __init__(self):
        super().__init__(
            "The code ran without error but displayed no figure. "
            "Make sure it draws the plot and shows it (for example with plt.show())."
        )


class FigureProblem(AttemptError):
    """The code ran and drew, but the figure fails a check (empty, several, unreadable).

    A soft failure: it is fed back like an error, yet if no later attempt does better
    its figure is still the answer.
    """

    def __init__(self, ename: str, message: str):
        super().__init__(message)
        self.ename = ename

    def __reduce__(self):
        return (type(self), (self.ename, str(self)))
