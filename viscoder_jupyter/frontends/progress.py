"""Render loop events under the cell: stock ipywidgets in a kernel, plain text elsewhere.

Views are driven from the cell's own thread (the magic drains an event queue),
so widget messages carry the right parent and land under the right cell.
"""

from __future__ import annotations

import html
import time

from ..core.events import AttemptFinished, AttemptStarted, CodeWritten, Done, Event, Notice, Status, TextStreamed

_STREAM_TAIL = 3000  # characters of the streaming reply kept on screen
_REFRESH_SECONDS = 0.15  # batch token updates: one comm message per refresh, not per token


def summary(result) -> str:
    """One line: what was verified of the answer ("ran and drew 1 figure with 3 bars"), not a
    claim that it is the plot asked for; what the request checks saw follows."""
    from ..core.verified import verified_text

    n = len(result.attempts)
    seconds = sum(a.seconds for a in result.attempts)
    timing = f"{seconds:.1f} s" + (
        f", plus {result.prepare_seconds:.1f} s loading" if result.prepare_seconds >= 1 else ""
    )
    tries = f"{n} attempt{'s' * (n > 1)}"
    if result.ok:
        verified, _, checked = verified_text(result.final, result.request).partition("; ")
        caveat = f". Note: {result.error}" if result.error else ""  # a check it never passed
        return f"VisCoder: {verified} after {tries} ({timing})" + (f"; {checked}" if checked else "") + caveat
    last = result.error.one_line() if result.error else "no attempt ran"
    return f"VisCoder: no working plot after {tries} ({timing}). Last error: {last}"


class TextProgress:
    """For terminals and front ends without widgets: one line per step."""

    def __init__(self, total: int):
        self.total = total

    def handle(self, event: Event) -> None:
        if isinstance(event, Status):
            print(f"VisCoder: {event.message}...", flush=True)
        elif isinstance(event, Notice):
            print(f"VisCoder: note: {event.message}.", flush=True)
        elif isinstance(event, AttemptStarted):
            print(f"VisCoder: attempt {event.number} of {event.of}: writing code...", flush=True)
        elif isinstance(event, AttemptFinished):
            attempt = event.attempt
            if attempt.repairs:
                print(f"  attempt {attempt.number}: mended before running: {'; '.join(attempt.repairs)}", flush=True)
            if not attempt.ok:
                print(f"  attempt {attempt.number} failed: {attempt.error.one_line()}", flush=True)

    def finish(self, message: str) -> None:
        print(message, flush=True)

    def discard(self) -> None:
        pass


class WidgetProgress:
    """Attempt k of N, the reply as it streams, and one foldable line per failed attempt
    (and per attempt whose code was mended before it ran).

    Beside the widget, the same display keeps a plain-text record of the run, updated at
    each step (not each token), with `metadata.viscoder.state` "running" until it ends:
    where widgets do not render (nbconvert, a plain-text front end) that text is what people
    see, and when the kernel dies or restarts mid-run (the widget is gone with it) the
    JupyterLab extension shows it as the run's last word.
    """

    def __init__(self, total: int):
        import ipywidgets as w
        from IPython.display import DisplayHandle

        self.total = total
        self.status = w.HTML()
        self.stream = w.HTML(layout=w.Layout(max_height="16em", overflow="auto"))
        self.notices = w.HTML()
        self.failures = w.Accordion(children=[])
        self.box = w.VBox([self.status, self.notices, self.stream, self.failures])
        self._text = ""
        self._shown_at = 0.0
        self._record: list[str] = []  # notices and failed attempts, as text
        self._bundle = dict(self.box._repr_mimebundle_())
        self._handle = DisplayHandle()
        self._handle.display(self._bundle, raw=True, metadata=_state("running"))
        self._set_status(f"starting (up to {total} attempts)")

    def handle(self, event: Event) -> None:
        if isinstance(event, Status):
            self._set_status(f"{event.message}...")
        elif isinstance(event, Notice):
            self.notices.value += f"<div>Note: {html.escape(event.message)}.</div>"
            self._record.append(f"  note: {event.message}.")
        elif isinstance(event, AttemptStarted):
            self._text = ""
            with self.box.hold_sync():
                self._set_status(f"attempt {event.number} of {event.of}: writing code...")
                self.stream.value = ""
        elif isinstance(event, TextStreamed):
            self._text += event.text
            if time.monotonic() - self._shown_at > _REFRESH_SECONDS:
                self._show_text()
        elif isinstance(event, CodeWritten):
            with self.box.hold_sync():  # the throttled redraw may lag the last tokens: flush them
                self._show_text()
                self._set_status(f"attempt {event.number} of {self.total}: running the code...")
        elif isinstance(event, AttemptFinished):
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

        body = w.HTML(f"<pre style='white-space: pre-wrap'>{html.escape(detail)}</pre>")
        with self.failures.hold_sync():
            self.failures.children = (*self.failures.children, body)
            self.failures.titles = (*self.failures.titles[: len(self.failures.children) - 1], title)

    def finish(self, message: str) -> None:
        self.status.value = html.escape(message)
        self._publish(message, "done")

    def discard(self) -> None:
        self._handle.update({"text/plain": ""}, raw=True, metadata=_state("done"))
        self.box.close()


def _state(state: str) -> dict:
    return {"viscoder": {"state": state}}


def make_view(total: int, in_kernel: bool):
    if in_kernel:
        try:
            return WidgetProgress(total)
        except ImportError:  # ipywidgets missing: text still works
            pass
    return TextProgress(total)
