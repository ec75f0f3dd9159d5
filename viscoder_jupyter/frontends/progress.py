"""Render loop events under the cell: stock ipywidgets in a kernel, plain text elsewhere.

Views are driven from the cell's own thread (the magic drains an event queue),
so widget messages carry the right parent and land under the right cell.
"""

from __future__ import annotations

import html
import time

from ..core.events import (
    AttemptFinished,
    AttemptStarted,
    CodeWritten,
    Done,
    DownloadProgress,
    Event,
    Notice,
    ReplyStarted,
    Status,
    TextStreamed,
)

_STREAM_TAIL = 3000  # characters of the streaming reply kept on screen
_REFRESH_SECONDS = 0.15  # batch token updates: one comm message per refresh, not per token


def summary(result, frames=None) -> str:
    """One line: what was verified of the answer ("ran and drew 1 figure with 3 bars"), not a
    claim that it is the plot asked for; what the request checks saw follows (with `frames`, the
    request's frames, the rules on the columns it names too), whether or not they were fed back."""
    from ..core.checks import FLAWS
    from ..core.request_checks import frame_columns
    from ..core.verified import verified_text

    n = len(result.attempts)
    seconds = sum(a.seconds for a in result.attempts)
    timing = f"{seconds:.1f} s" + (
        f", plus {result.prepare_seconds:.1f} s loading" if result.prepare_seconds >= 1 else ""
    )
    tries = f"{n} attempt{'s' * (n > 1)}"
    if result.ok:
        columns = frame_columns(frames, result.request) if frames else None
        verified, _, checked = verified_text(result.final, result.request, columns).partition("; ")
        # A check it never passed; the figure's flaws are already in the verified words.
        caveat = f". Note: {result.error}" if result.error and result.error.ename not in FLAWS else ""
        return f"VisCoder: {verified} after {tries} ({timing})" + (f"; {checked}" if checked else "") + caveat
    last = result.error.one_line() if result.error else "no attempt ran"
    return f"VisCoder: no working plot after {tries} ({timing}). Last error: {last}"


_TEXT_DOWNLOAD_SECONDS = 5.0  # a plain-text view prints a download's progress this often


def _size(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def download_line(event: DownloadProgress) -> str:
    """'downloading X: 1.2 GB of 15.2 GB (8%), 45.0 MB/s, about 5 min left'."""
    if event.bytes_total:
        share = min(100, int(100 * event.bytes_done / event.bytes_total))
        amount = f"{_size(event.bytes_done)} of {_size(event.bytes_total)} ({share}%)"
    else:
        amount = _size(event.bytes_done)
    parts = [f"downloading {event.what or 'the model'}: {amount}"]
    if event.done:
        parts.append("done")
    else:
        if event.rate:
            parts.append(f"{_size(event.rate)}/s")
        if event.eta is not None:
            parts.append(f"about {_duration(event.eta)} left")
    return ", ".join(parts)


def reading_line(event: ReplyStarted) -> str:
    """'reading a prompt of 1843 tokens', or 'reading 312 new tokens of a 2155-token prompt'."""
    if event.prompt_tokens and event.new_tokens is not None and event.new_tokens < event.prompt_tokens:
        return f"reading {event.new_tokens} new tokens of a {event.prompt_tokens}-token prompt"
    if event.prompt_tokens:
        return f"reading a prompt of {event.prompt_tokens} tokens"
    return "reading the prompt"


class ReplyMeter:
    """How the model's reply is going, for the status line: what it reads, then tokens so far and
    tokens per second, against the attempt's time budget. A reply stuck in a loop or crawling
    shows as such instead of minutes of "writing code..."."""

    def __init__(self):
        self.started = ReplyStarted(0)
        self.begun_at = self.first_at = 0.0
        self.tokens = 0

    def start(self, event: ReplyStarted) -> None:
        self.started, self.begun_at, self.first_at, self.tokens = event, time.monotonic(), 0.0, 0

    def streamed(self) -> None:
        if not self.tokens:
            self.first_at = time.monotonic()
        self.tokens += 1  # each streamed piece is a token (a server's chunk: about one)

    def line(self) -> str:
        """'reading a prompt of 1843 tokens (12 s of the 180 s budget)' or 'writing code: 132 tokens,
        9.4 tokens/s (21 s of the 180 s budget)'."""
        now = time.monotonic()
        event = self.started
        if not self.tokens:
            what = reading_line(event)
        else:
            rate = (self.tokens - 1) / (now - self.first_at) if now - self.first_at >= 0.5 else None
            what = f"writing code: {self.tokens} token{'s' * (self.tokens > 1)}" + (
                f", {rate:.1f} tokens/s" if rate else ""
            )
        spent = now - self.begun_at
        budget = f" of the {event.budget:g} s budget" if event.budget else ""
        return f"{what} ({spent:.0f} s{budget})"

    def written(self) -> str:
        """'the model wrote 132 tokens in 14 s, 9.4 tokens/s'."""
        now = time.monotonic()
        rate = (self.tokens - 1) / (now - self.first_at) if self.tokens > 1 and now - self.first_at >= 0.5 else None
        return f"the model wrote {self.tokens} token{'s' * (self.tokens != 1)} in {now - self.begun_at:.0f} s" + (
            f", {rate:.1f} tokens/s" if rate else ""
        )


class TextProgress:
    """For terminals and front ends without widgets: one line per step."""

    def __init__(self, total: int):
        self.total = total
        self._download_at = 0.0
        self._meter = ReplyMeter()

    def handle(self, event: Event) -> None:
        if isinstance(event, DownloadProgress):
            if event.done or time.monotonic() - self._download_at >= _TEXT_DOWNLOAD_SECONDS:
                self._download_at = time.monotonic()
                print(f"VisCoder: {download_line(event)}", flush=True)
        elif isinstance(event, Status):
            print(f"VisCoder: {event.message}...", flush=True)
        elif isinstance(event, Notice):
            print(f"VisCoder: note: {event.message}.", flush=True)
        elif isinstance(event, AttemptStarted):
            print(f"VisCoder: attempt {event.number} of {event.of}: writing code...", flush=True)
        elif isinstance(event, ReplyStarted):
            self._meter.start(event)
            if event.prompt_tokens:
                print(f"  {reading_line(event)}...", flush=True)
        elif isinstance(event, TextStreamed):
            self._meter.streamed()
        elif isinstance(event, CodeWritten) and self._meter.begun_at:
            print(f"  {self._meter.written()}", flush=True)
        elif isinstance(event, AttemptFinished):
            attempt = event.attempt
            if attempt.repairs:
                print(f"  attempt {attempt.number}: mended before running: {'; '.join(attempt.repairs)}", flush=True)
            if not attempt.ok:
                print(f"  attempt {attempt.number} failed: {attempt.error.one_line()}", flush=True)

    def tick(self) -> None:
        pass

    def finish(self, message: str) -> None:
        print(message, flush=True)

    def discard(self) -> None:
        pass


class WidgetProgress:
    """Attempt k of N, how the reply goes (tokens, tokens/s, against the budget), the reply as it
    streams, and one foldable line per failed attempt (and per attempt mended before it ran).

    Beside the widget, the same display keeps a plain-text record of the run, updated at
    each step (not each token), with `metadata.viscoder.state` "running" until it ends:
    where widgets do not render (nbconvert, a plain-text front end) that text is what people
    see, and when the kernel dies or restarts mid-run (the widget is gone with it) the
    JupyterLab extension shows it as the run's last word. When the run ends, the display
    becomes a static record (HTML and that text, no widget): a saved notebook shows it after a
    reload, in nbviewer or `nbconvert --to html`, where a widget would read "Error displaying
    widget: model not found".
    """

    def __init__(self, total: int):
        import ipywidgets as w
        from IPython.display import DisplayHandle

        self.total = total
        self.status = w.HTML()
        self.download = w.FloatProgress(min=0.0, max=1.0, layout=w.Layout(display="none", width="24em"))
        self.stream = w.HTML(layout=w.Layout(max_height="16em", overflow="auto"))
        self.notices = w.HTML()
        self.failures = w.Accordion(children=[])
        self.box = w.VBox([self.status, self.download, self.notices, self.stream, self.failures])
        self._text = ""
        self._shown_at = self._ticked_at = 0.0
        self._attempt = 0
        self._meter: ReplyMeter | None = None  # while the model writes a reply
        self._record: list[str] = []  # notices and failed attempts, as text
        self._notes: list[str] = []
        self._entries: list[tuple[str, str]] = []  # (title, detail) of each foldable line
        self._bundle = dict(self.box._repr_mimebundle_())
        self._handle = DisplayHandle()
        self._handle.display(self._bundle, raw=True, metadata=_state("running"))
        self._set_status(f"starting (up to {total} attempts)")

    def handle(self, event: Event) -> None:
        if isinstance(event, DownloadProgress):
            with self.box.hold_sync():
                self.download.layout.display = "none" if event.done else ""
                self.download.value = event.bytes_done / event.bytes_total if event.bytes_total else 0.0
                self._set_status(download_line(event))
        elif isinstance(event, Status):
            self._set_status(f"{event.message}...")
        elif isinstance(event, Notice):
            self.notices.value += f"<div>Note: {html.escape(event.message)}.</div>"
            self._notes.append(f"Note: {event.message}.")
            self._record.append(f"  note: {event.message}.")
        elif isinstance(event, AttemptStarted):
            self._attempt = event.number
            with self.box.hold_sync():
                self.download.layout.display = "none"
                self._set_status(f"attempt {event.number} of {event.of}: writing code...")
        elif isinstance(event, ReplyStarted):
            # Each reply on its own: a sampled candidate's text does not run on from the one before.
            self._text, self._meter = "", ReplyMeter()
            self._meter.start(event)
            with self.box.hold_sync():
                self.stream.value = ""
                self._show_meter()
        elif isinstance(event, TextStreamed):
            self._text += event.text
            if self._meter is not None:
                self._meter.streamed()
            if time.monotonic() - self._shown_at > _REFRESH_SECONDS:
                with self.box.hold_sync():
                    self._show_text()
                    if self._meter is not None:
                        self._show_meter()
        elif isinstance(event, CodeWritten):
            with self.box.hold_sync():  # the throttled redraw may lag the last tokens: flush them
                self._show_text()
                written = f" ({self._meter.written()})" if self._meter else ""
                self._meter = None
                self._set_status(f"attempt {event.number} of {self.total}: running the code...{written}")
        elif isinstance(event, AttemptFinished):
            self._meter = None
            attempt = event.attempt
            if attempt.repairs:
                self._add_entry(
                    f"attempt {attempt.number}: mended {len(attempt.repairs)} thing(s) before running",
                    "\n".join(attempt.repairs),
                )
            if not attempt.ok:
                error = attempt.error
                self._add_entry(
                    f"attempt {attempt.number}: {error.one_line()}",
                    f"{attempt.code or attempt.reply}\n\n{error.feedback_text()}",
                )
                self._record.append(f"  attempt {attempt.number} failed: {error.one_line()}")
        elif isinstance(event, Done):
            self.stream.layout.display = "none" if event.result.ok else ""

    def tick(self) -> None:
        """Between events: the seconds go on while a long prompt is read or a token is slow."""
        if self._meter is not None and time.monotonic() - self._ticked_at >= 1.0:
            self._show_meter()

    def _show_meter(self) -> None:
        self._ticked_at = time.monotonic()
        self.status.value = (
            f"<b>VisCoder</b>: attempt {self._attempt} of {self.total}: {html.escape(self._meter.line())}"
        )

    def _set_status(self, message: str) -> None:
        self.status.value = f"<b>VisCoder</b>: {html.escape(message)}"
        self._publish(f"VisCoder: {message}", "running")

    def _publish(self, line: str, state: str) -> None:
        self._bundle["text/plain"] = "\n".join([line, *self._record])
        self._handle.update(self._bundle, raw=True, metadata=_state(state))

    def _show_text(self) -> None:
        self._shown_at = time.monotonic()
        self.stream.value = f"<pre style='white-space: pre-wrap'>{html.escape(self._text[-_STREAM_TAIL:])}</pre>"

    def _add_entry(self, title: str, detail: str) -> None:
        import ipywidgets as w

        self._entries.append((title, detail))
        body = w.HTML(f"<pre style='white-space: pre-wrap'>{html.escape(detail)}</pre>")
        with self.failures.hold_sync():
            self.failures.children = (*self.failures.children, body)
            self.failures.titles = (*self.failures.titles[: len(self.failures.children) - 1], title)

    def finish(self, message: str) -> None:
        """The run is over: the widget's place gets the static record, and the widgets go."""
        text = "\n".join([message, *self._record])
        self._bundle = {"text/html": static_record(message, self._notes, self._entries), "text/plain": text}
        self._handle.update(self._bundle, raw=True, metadata=_state("done"))
        self.box.close()

    def discard(self) -> None:
        self._handle.update({"text/plain": ""}, raw=True, metadata=_state("done"))
        self.box.close()


def static_record(line: str, notes: list[str], entries: list[tuple[str, str]]) -> str:
    """The finished run as plain HTML (what every viewer renders, trusted or not): the last line,
    the notes, and each failed or mended attempt as a <details> the reader can open."""
    parts = [f"<div><b>VisCoder</b>: {html.escape(line.removeprefix('VisCoder: '))}</div>"]
    parts += [f"<div>{html.escape(note)}</div>" for note in notes]
    parts += [
        f"<details><summary>{html.escape(title)}</summary>"
        f"<pre style='white-space: pre-wrap'>{html.escape(detail)}</pre></details>"
        for title, detail in entries
    ]
    return f"<div class='viscoder-record'>{''.join(parts)}</div>"


def _state(state: str) -> dict:
    return {"viscoder": {"state": state}}


def make_view(total: int, in_kernel: bool):
    if in_kernel:
        try:
            return WidgetProgress(total)
        except ImportError:  # ipywidgets missing: text still works
            pass
    return TextProgress(total)
