"""`%%viscoder`: a thin IPython front end over the loop."""

from __future__ import annotations

import queue
import re
from dataclasses import dataclass, field

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .. import runtime
from ..core.code_review import CATEGORIES, header_lines
from ..core.errors import ViscoderError, with_retry_hint
from ..core.setting_flags import setting_argument
from ..core.settings import VisCoder
from .code_block import show_code_block


def _flag(name: str):
    return setting_argument(name, None, choices=False)


_RETRY = "Run the cell again to retry."
_MAGIC_LINE = re.compile(r"%%viscoder(?=\s|$)")


def needs_request(line: str) -> str:
    """What `%%viscoder LINE` with nothing below it, or the line magic `%viscoder LINE`, says: the
    cell to write, with the user's own line (no "did you mean" sending them to the other form)."""
    first = f"%%viscoder {line.strip()}".rstrip()
    return (
        "%%viscoder needs your request in the cell, on the lines below the %%viscoder line. Write "
        f"a cell like this:\n{first}\na bar chart of total revenue per region"
    )


@dataclass
class ViscoderArgs:
    """The parsed `%%viscoder` line; None means 'use the configured value'."""

    frames: list[str] = field(default_factory=list)
    lib: str | None = None
    retries: int | None = None
    timeout: float | None = None
    attempt_budget: float | None = None
    backend: str | None = None
    model: str | None = None
    insert: bool | None = None

    def overrides(self) -> dict:
        return {k: v for k, v in vars(self).items() if k != "frames"}


def inserted_cell(request: str, code: str, magic: str = "%%viscoder", findings=()) -> str:
    """The new cell: the request quoted as a comment, then the code. With `findings` (the review
    flagged lines, core/code_review.py), every line of the code is commented out, under a header
    naming each flagged line and why: running the cell then does nothing until the user has read it."""
    lines = [line.rstrip() for line in request.strip().splitlines()]
    header = [f"# {magic}: {lines[0]}"] + [f"#   {line}" if line else "#" for line in lines[1:]]
    body = code.strip()
    if findings:
        header += header_lines(findings)
        body = "\n".join(f"# {line}" if line.strip() else "#" for line in body.splitlines())
    return "\n".join(header) + "\n" + body + "\n"


@magics_class
class VisCoderMagics(Magics):
    def __init__(self, shell):
        super().__init__(shell)
        # Registered with the shell so `%config VisCoder.backend = ...` and ipython_config reach it.
        self.settings = VisCoder(parent=shell)
        self.last_result = None
        from .cell_history import CellHistory

        self.history = CellHistory(shell)  # fed by a post_run_cell hook (see register)

    @magic_arguments("%viscoder")  # the usage line then reads %%viscoder: it is a cell magic
    @argument(
        "frames", nargs="*", help="DataFrame variable(s) to plot; default: the only one, or those the request names."
    )
    # Help and types from the settings. None (unset) means the configured value; the settings check
    # the value (one-line errors), so --lib names its choices in its help rather than to argparse.
    @argument(*_flag("lib")[0], **_flag("lib")[1])
    @argument(*_flag("retries")[0], **_flag("retries")[1])
    @argument(*_flag("timeout")[0], **_flag("timeout")[1])
    @argument(*_flag("attempt_budget")[0], **_flag("attempt_budget")[1])
    @argument(*_flag("backend")[0], **_flag("backend")[1])
    @argument(*_flag("model")[0], **_flag("model")[1])
    @argument("--no-insert", action="store_true", help="Do not insert the working code as a new cell.")
    @line_cell_magic  # a line magic too, so that %viscoder? finds the help
    def viscoder(self, line: str, cell: str | None = None):
        """Plot a DataFrame from a request in plain words; the cell body is the request.

        The model writes the code, a child kernel runs it (your variables are never
        touched), errors go back to the model, and the working code lands in a new cell.
        """
        if cell is None or not cell.strip():
            raise UsageError(needs_request(line))
        parsed = parse_argstring(self.viscoder, line)
        args = ViscoderArgs(
            frames=parsed.frames,
            lib=parsed.lib,
            retries=parsed.retries,
            timeout=parsed.timeout,
            attempt_budget=parsed.attempt_budget,
            backend=parsed.backend,
            model=parsed.model,
            insert=False if parsed.no_insert else None,
        )
        try:
            self.handle_request(args, cell)
        except ViscoderError as exc:
            # A problem with the request or the setup: one line, no traceback of ours.
            raise UsageError(with_retry_hint(exc, _RETRY)) from None

    def handle_request(self, args: ViscoderArgs, request: str) -> None:
        job = runtime.plot_job(
            request,
            self.settings,
            namespace=self.shell.user_ns,
            names=args.frames,
            overrides=args.overrides(),
        )
        job.origin = "magic"
        result = self._run_with_view(job)
        if result is not None:
            self.show_result(result, request, job.settings)
            self._watch_for_kept(job, result)

    @line_magic
    def viscoder_fix(self, line: str):
        """Fix the last cell that failed; with a note ('labels overlap'), the last plotting cell.

        %viscoder_fix [what is wrong]

        The cell's code and traceback are the model's first turn; the same loop as
        %%viscoder runs the fixes in a child kernel, and the working code lands in a
        new cell below. Options come from %config VisCoder.
        """
        try:
            self.handle_fix(line.strip())
        except ViscoderError as exc:
            raise UsageError(with_retry_hint(exc, _RETRY)) from None

    def handle_fix(self, note: str) -> None:
        record = self.history.target(note)
        job = runtime.fix_job(record.source, record.traceback, note, self.settings, namespace=self.shell.user_ns)
        print(f"VisCoder: fixing {record.label}" + (f" ({record.ename}: {record.evalue})" if record.failed else ""))
        job.origin = "magic_fix"
        result = self._run_with_view(job)
        if result is not None:
            self.show_result(result, job.request, job.settings, magic="%viscoder_fix")
            self._watch_for_kept(job, result)

    def _watch_for_kept(self, job: runtime.Job, result) -> None:
        """With `collect` on, the inserted cell run without error is the user's verdict: kept."""
        if not (job.record_id and result.ok and job.settings.insert):
            return
        from ..core.dialogue_log import append_verdict, log_path

        path, record_id = log_path(job.settings), job.record_id
        self.history.watch(result.code, lambda: append_verdict(path, record_id, "kept"))

    def _run_with_view(self, job: runtime.Job):
        """Run the job on the background loop, rendering its events under the cell.

        Returns the result, or None when the user interrupted (everything was stopped).
        """
        from .kernel_status import subshell_requests_wait

        with subshell_requests_wait(self.shell):  # the kernel status stays busy through the run
            return self._drive_view(job)

    def _drive_view(self, job: runtime.Job):
        from .progress import make_view, summary

        view = make_view(job.settings.retries + 1, in_kernel=getattr(self.shell, "kernel", None) is not None)
        events: queue.Queue = queue.Queue()
        future = runtime.start(job, events.put)
        try:
            while not (future.done() and events.empty()):
                try:
                    view.handle(events.get(timeout=0.05))
                except queue.Empty:
                    view.tick()  # the seconds of a long prompt or a slow token go on
        except KeyboardInterrupt:
            runtime.cancel_and_wait(future)
            view.finish("VisCoder: interrupted; the model and the child kernel were stopped, nothing was inserted.")
            return None
        try:
            result = future.result()
        except ViscoderError:
            view.discard()  # the UsageError line is the one message
            raise
        self.last_result = result
        view.finish(summary(result, job.frames))
        return result

    def show_result(self, result, request: str, settings: VisCoder, magic: str = "%%viscoder") -> None:
        from IPython.display import Image, display

        attempt = result.final
        if attempt is None:
            return
        for png in attempt.images:
            display(Image(data=png))
        for figure in attempt.plotly_json:
            display({"application/vnd.plotly.v1+json": figure, "text/plain": "<plotly figure>"}, raw=True)
        if result.ok:
            cell = inserted_cell(request, result.code, magic, result.findings)
            if result.findings:
                print(flagged_message(result.findings, settings.insert))
            show_code_block(cell)  # kept where no cell gets inserted
            if settings.insert:
                self.shell.set_next_input(cell, replace=False)
            return
        # Every attempt failed: show what was tried last, insert nothing.
        print("Last code tried:\n" + (attempt.code or attempt.reply))
        print("\n" + attempt.error.feedback_text())


def flagged_message(findings, inserted: bool) -> str:
    """What the user reads under the figure when the review flagged the working code."""
    where = "The cell below is inserted commented out" if inserted else "The code below is commented out"
    return (
        f"VisCoder: the review flagged {len(findings)} line(s) of this code that plotting code never needs "
        f"({', '.join(dict.fromkeys(CATEGORIES[f.category] for f in findings))}). {where}: read it before "
        "you run any of it.\n" + "\n".join(f"  {f.describe()}" for f in findings)
    )


def body_for_empty_cell(lines: list[str]) -> list[str]:
    """An input transformer: a `%%viscoder` line alone in its cell gets an empty body line.

    IPython refuses a cell magic whose body is empty before the magic runs, with "Did you mean the
    line magic %viscoder?", and the line magic sends the user back to the cell magic: with a body
    (blank) the magic runs and says what to write (`needs_request`).
    """
    if len(lines) == 1 and _MAGIC_LINE.match(lines[0]):
        return [lines[0] if lines[0].endswith("\n") else lines[0] + "\n", "\n"]
    return lines


def register(shell) -> VisCoderMagics:
    """Register the magics, their settings (`%config VisCoder`) and the cell-history hook."""
    magics = VisCoderMagics(shell)
    shell.register_magics(magics)
    if body_for_empty_cell not in shell.input_transformers_cleanup:
        shell.input_transformers_cleanup.append(body_for_empty_cell)
    shell.configurables.append(magics.settings)
    shell.events.register("post_run_cell", magics.history.post_run_cell)
    return magics


def unregister(shell) -> None:
    if body_for_empty_cell in shell.input_transformers_cleanup:
        shell.input_transformers_cleanup.remove(body_for_empty_cell)
    magics = shell.magics_manager.registry.get("VisCoderMagics")
    if magics is not None:
        try:
            shell.events.unregister("post_run_cell", magics.history.post_run_cell)
        except ValueError:
            pass
    for magics in [m for m in shell.configurables if isinstance(m, VisCoder)]:
        shell.configurables.remove(magics)
