"""What the loop reports while it works, and what it returns.

Front ends (the magic, the sidebar, the benchmark) only render these; the loop
knows nothing of IPython or the browser.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import AttemptError


@dataclass
class Attempt:
    """One round: the model's reply, the code run, and how it went."""

    number: int
    reply: str
    code: str
    error: AttemptError | None = None
    images: list[bytes] = field(default_factory=list)
    plotly_json: list[dict] = field(default_factory=list)
    stdout: str = ""
    generate_seconds: float = 0.0
    execute_seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def seconds(self) -> float:
        return self.generate_seconds + self.execute_seconds


@dataclass
class PlotResult:
    """The outcome of a request: the working code and its figures, or every failed attempt."""

    request: str
    attempts: list[Attempt]
    prepare_seconds: float = 0.0  # loading the model, starting the child: not the request's own time

    @property
    def ok(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].ok

    @property
    def final(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def code(self) -> str:
        return self.final.code if self.final else ""

    @property
    def images(self) -> list[bytes]:
        return self.final.images if self.final else []

    @property
    def error(self) -> AttemptError | None:
        return self.final.error if self.final else None

    def _repr_png_(self):
        # Shows the figure when a result is the last expression of a cell.
        return self.images[0] if self.images else None


@dataclass
class Status:
    """Work before the first attempt, e.g. loading the model."""

    message: str


@dataclass
class AttemptStarted:
    number: int
    of: int


@dataclass
class TextStreamed:
    number: int
    text: str


@dataclass
class AttemptFinished:
    attempt: Attempt


@dataclass
class Done:
    result: PlotResult


Event = Status | AttemptStarted | TextStreamed | AttemptFinished | Done
