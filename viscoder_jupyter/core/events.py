"""What the loop reports while it works, and what it returns.

Front ends (the magic, the sidebar, the benchmark) only render these; the loop
knows nothing of IPython or the browser.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import AttemptError, FigureProblem


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
    repairs: list[str] = field(default_factory=list)  # what was mended in the code before it ran
    candidates: int = 1  # sampled candidates tried in this round
    figure_facts: list[dict] | None = None  # what the child saw in its matplotlib figures
    findings: list = field(default_factory=list)  # what the review of the code flagged (core/code_review.py)
    stopped: str = ""  # why the reply was stopped before the model finished it ("" when it finished)

    @property
    def ok(self) -> bool:
        """Ran, drew, and passed every check."""
        return self.error is None

    @property
    def drew(self) -> bool:
        """Ran without error and showed a figure, checks aside."""
        return self.error is None or isinstance(self.error, FigureProblem)

    @property
    def seconds(self) -> float:
        return self.generate_seconds + self.execute_seconds


@dataclass
class PlotResult:
    """The outcome of a request: the working code and its figures, or every failed attempt."""

    request: str
    attempts: list[Attempt]
    prepare_seconds: float = 0.0  # loading the model, starting the child: not the request's own time
    sandboxed: bool | None = None  # the code ran inside the sandbox (None: not known, e.g. a harness's kernel)

    @property
    def ok(self) -> bool:
        """There is a figure to show: an attempt drew one (perhaps failing a check)."""
        return self.final is not None and self.final.drew

    @property
    def final(self) -> Attempt | None:
        """The answer: the last attempt that passed, else the last that drew something (an empty
        figure only when nothing else drew), else the last."""
        for good in (
            lambda a: a.ok,
            lambda a: a.drew and getattr(a.error, "ename", "") != "EmptyFigure",
            lambda a: a.drew,
        ):
            found = [a for a in self.attempts if good(a)]
            if found:
                return found[-1]
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

    @property
    def findings(self) -> list:
        """What the review flagged in the answer's code: front ends show it before it is used."""
        return self.final.findings if self.final else []

    def _repr_png_(self):
        # Shows the figure when a result is the last expression of a cell.
        return self.images[0] if self.images else None


@dataclass
class Status:
    """Work before the first attempt, e.g. loading the model."""

    message: str


@dataclass
class Notice:
    """Something the user should know about this request that stays on screen (a frame too
    wide to show the model whole)."""

    message: str


@dataclass
class DownloadProgress:
    """A model being downloaded before the first attempt (huggingface_hub's own progress):
    `bytes_total` is None until the size is known, `rate` (bytes/s) and `eta` (seconds) until
    enough has arrived to tell. `done` is the last report of this download."""

    what: str
    bytes_done: int
    bytes_total: int | None = None
    rate: float | None = None
    eta: float | None = None
    done: bool = False


@dataclass
class AttemptStarted:
    number: int
    of: int


@dataclass
class ReplyStarted:
    """The model starts a reply (an attempt's, or one sampled candidate's), reading the prompt
    first: `prompt_tokens` long, `new_tokens` of them not read before (a kept cache holds the
    rest); None where the backend cannot count them (a server). `budget`: the seconds the reply
    may take (0: no limit)."""

    number: int
    prompt_tokens: int | None = None
    new_tokens: int | None = None
    budget: float = 0.0


@dataclass
class TextStreamed:
    number: int
    text: str


@dataclass
class CodeWritten:
    """The model finished writing; the code now runs in the child kernel. Views show the
    whole reply at this point (their throttled redraws may lag the last tokens)."""

    number: int
    code: str


@dataclass
class AttemptFinished:
    attempt: Attempt


@dataclass
class Done:
    result: PlotResult


Event = (
    Status
    | Notice
    | DownloadProgress
    | AttemptStarted
    | ReplyStarted
    | TextStreamed
    | CodeWritten
    | AttemptFinished
    | Done
)
