"""Render loop events under the cell: stock ipywidgets in a kernel, plain text elsewhere.

Views are driven from the cell's own thread (the magic drains an event queue),
so widget messages carry the right parent and land under the right cell.
"""
from __future__ import annotations

import html
import time

from .events import AttemptFinished, AttemptStarted, Done, Event, Status, TextStreamed

_STREAM_TAIL = 3000  # characters of the streaming reply kept on screen
_REFRESH_SECONDS = 0.15  # batch token updates: one comm message per refresh, not per token


def summary(result) -> str:
    n = len(result.attempts)
    seconds = sum(a.seconds for a in result.attempts)
    timing = f"{seconds:.1f} s" + (f", plus {result.prepare_seconds:.1f} s loading" if result.prepare_seconds >= 1 else "")
    if result.ok:
        caveat = f". Note: {result.error}" if result.error else ""  # a check it never passed
        return f"VisCoder: working plot after {n} attempt{'s' * (n > 1)} ({timing}){caveat}"
    last = result.error.one_line() if result.error else "no attempt ran"
    return f"VisCoder: no working plot after {n} attempt{'s' * (n > 1)} ({timing}). Last error: {last}"


class TextProgress:
    """For terminals and front ends without widgets: one line per step."""

    def __init__(self, total: int):
        self.total = total

    def handle(self, event: Event) -> None:
        if isinstance(event, Status):
            print(f"VisCoder: {event.message}...", flush=True)
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
    (and per attempt whose code was mended before it ran)."""

    def __init__(self, total: int):
        import ipywidgets as w
        from IPython.display import display

        self.total = total
        self.status = w.HTML(f"<b>VisCoder</b>: starting (up to {total} attempts)")
        self.stream = w.HTML(layout=w.Layout(max_height="16em", overflow="auto"))
        self.failures = w.Accordion(children=[])
        self.box = w.VBox([self.status, self.stream, self.failures])
        self._text = ""
        self._shown_at = 0.0
        # Where widgets do not render (nbconvert, a plain-text front end) the
        # text/plain part of the same display is what people see.
        self._bundle = dict(self.box._repr_mimebundle_())
        self._bundle["text/plain"] = f"VisCoder: working (up to {total} attempts)"
        self._handle = display(self._bundle, raw=True, display_id=True)

    def handle(self, event: Event) -> None:
        if isinstance(event, Status):
            self.status.value = f"<b>VisCoder</b>: {html.escape(event.message)}..."
        elif isinstance(event, AttemptStarted):
            self._text = ""
            with self.box.hold_sync():
                self.status.value = f"<b>VisCoder</b>: attempt {event.number} of {event.of}: writing code..."
                self.stream.value = ""
        elif isinstance(event, TextStreamed):
            self._text += event.text
            if time.monotonic() - self._shown_at > _REFRESH_SECONDS:
                self._show_text()
        elif isinstance(event, AttemptFinished):
            self._show_text()
            attempt = event.attempt
            if attempt.repairs:
                self._add_entry(f"attempt {attempt.number}: mended {len(attempt.repairs)} thing(s) before running",
                                "\n".join(attempt.repairs))
            if not attempt.ok:
                error = attempt.error
                self._add_entry(f"attempt {attempt.number}: {error.one_line()}",
                                f"{attempt.code or attempt.reply}\n\n{error.feedback_text()}")
        elif isinstance(event, Done):
            self.stream.layout.display = "none" if event.result.ok else ""

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
        self._bundle["text/plain"] = message
        self._handle.update(self._bundle, raw=True)

    def discard(self) -> None:
        self._handle.update({"text/plain": ""}, raw=True)
        self.box.close()


def make_view(total: int, in_kernel: bool):
    if in_kernel:
        try:
            return WidgetProgress(total)
        except ImportError:  # ipywidgets missing: text still works
            pass
    return TextProgress(total)
