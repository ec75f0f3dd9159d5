"""The kernel side of the sidebar: a comm target that runs fixes and streams their events.

The messages and their fields are declared in `protocol` (mirrored in labextension/src/protocol.ts).

The request is checked and run by `runtime` (`fix_job`, then the loop on its background
loop), so a fix never blocks the kernel: the user can keep running cells meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import runtime
from ..core.errors import BackendUnavailable, NoFrames, ViscoderError, naming_the_model_setting, with_retry_hint
from ..core.events import (
    AttemptFinished,
    AttemptStarted,
    CodeWritten,
    Done,
    DownloadProgress,
    Notice,
    ReplyStarted,
    Status,
    TextStreamed,
)
from . import cancel_control
from .progress import reading_line
from .protocol import REVIEW_FINDING, SETTING_KEYS, TARGET, BadMessage, incoming, message
from .sidebar_settings import tighten_only

log = logging.getLogger(__name__)
_TEXT_FLUSH_SECONDS = 0.1  # streamed text goes out in batches, not one message per token
_LOGGED_AS = {"accept": "accepted", "insert": "inserted", "discard": "discarded"}  # sidebar button -> log verdict
_JOBS_KEPT = 20  # recent runs whose proposal may still get a verdict
_handlers: dict[int, Callable] = {}
_channels: weakref.WeakValueDictionary[str, FixChannel] = weakref.WeakValueDictionary()  # by comm id


def register_target(shell, settings_of: Callable[[], Any]) -> None:
    """Register the comm target in the shell's kernel; a shell without a kernel has no frontend."""
    if getattr(shell, "kernel", None) is None:
        return
    from comm import get_comm_manager

    def open_channel(comm, open_msg) -> None:
        FixChannel(comm, shell, settings_of)

    get_comm_manager().register_target(TARGET, open_channel)
    _handlers[id(shell)] = open_channel
    cancel_control.register(shell.kernel, _cancel_soon)  # Cancel while a cell runs


def unregister_target(shell) -> None:
    handler = _handlers.pop(id(shell), None)
    if handler is None:
        return
    cancel_control.unregister(shell.kernel)
    from comm import get_comm_manager

    manager = get_comm_manager()
    if manager.targets.get(TARGET) is handler:
        manager.unregister_target(TARGET, handler)


def overrides_from(raw: Any) -> dict[str, Any]:
    """The frontend's settings: only known keys, empty values mean 'the kernel's own config'
    (then `tighten_only` keeps those that loosen nothing)."""
    if not isinstance(raw, dict):
        return {}
    return {k: raw[k] for k in SETTING_KEYS if raw.get(k) not in (None, "")}


@dataclass
class _Run:
    id: str
    future: Any = None
    finished: bool = False
    text: list[str] = field(default_factory=list)
    flushed_at: float = 0.0
    flush_scheduled: bool = False
    number: int = 0  # the attempt whose text is buffered
    cancelling: bool = False
    sidebar_model: bool = False  # the model is the sidebar's setting: errors about it name that setting


class FixChannel:
    """One open comm (one notebook): runs one fix at a time and streams its events."""

    def __init__(self, comm, shell, settings_of: Callable[[], Any]):
        self.comm = comm
        self.shell = shell
        self.settings_of = settings_of
        self._run: _Run | None = None
        self._jobs: dict[str, runtime.Job] = {}  # recent runs by id, for their verdicts
        self._lock = threading.Lock()  # messages may arrive on a subshell or the control thread
        _channels[comm.comm_id] = self
        comm.on_msg(self.on_msg)
        comm.on_close(self.on_close)
        from .._version import __version__

        self.send(message("ready", version=__version__))

    # ------------------------------------------------------------------ incoming
    def on_msg(self, msg: dict) -> None:
        """Each message is checked against its declaration first; whatever goes wrong, the panel
        gets an "error" reply (a message that does not match, or a failure of ours), never silence."""
        try:
            kind, fields = incoming((msg.get("content") or {}).get("data"))
        except BadMessage as exc:
            self.send(message("error", id=exc.id, reason="bad_request", message=_refused(exc)))
            return
        try:
            if kind == "fix":
                self.start(fields)
            elif kind == "cancel":
                self.cancel(fields["id"])
            elif kind == "verdict":
                self.verdict(fields["id"], fields["verdict"])
        except Exception as exc:  # noqa: BLE001 (the comm swallows what a handler raises: say it instead)
            log.exception("VisCoder: the sidebar's %r message failed", kind)
            self.send(message("error", id=fields["id"], reason="internal", message=f"{type(exc).__name__}: {exc}"))

    def on_close(self, msg: dict) -> None:
        run = self._run
        if run is not None and run.future is not None and not run.future.done():
            runtime.cancel_and_wait(run.future)

    def start(self, fix: dict) -> None:
        """`fix`: a "fix" message's fields, as `protocol.incoming` reads them."""
        run_id = fix["id"]
        with self._lock:
            if self._run is not None and not self._run.finished:
                self.send(
                    message(
                        "error",
                        id=run_id,
                        reason="busy",
                        message="A fix is already running for this notebook: wait for it or cancel it.",
                    )
                )
                return
            kernel_settings = self.settings_of()
            overrides, refused = tighten_only(overrides_from(fix["settings"]), kernel_settings)
            try:
                job = runtime.fix_job(
                    fix["source"],
                    fix["traceback"],
                    fix["note"],
                    kernel_settings,
                    namespace=self.shell.user_ns,
                    overrides=overrides,
                )
            except NoFrames as exc:
                self.send(message("error", id=run_id, reason="no_frames", message=str(exc)))
                return
            except ViscoderError as exc:
                self.send(_error(run_id, exc))
                return
            job.origin = "sidebar"
            for why in refused:  # before the run: the panel keeps each line
                self.send(message("notice", id=run_id, message=why))
            self._jobs[run_id] = job
            while len(self._jobs) > _JOBS_KEPT:
                self._jobs.pop(next(iter(self._jobs)))
            run = self._run = _Run(run_id, sidebar_model="model" in overrides)
            run.future = runtime.submit(self._main(run, runtime.async_run_job(job, lambda e: self._event(run, e))))

    def cancel(self, run_id: str) -> None:
        with self._lock:  # start() holds it until the run has its future
            run = self._run
        if run is None or run.finished or (run_id and run.id != run_id):
            return
        run.cancelling = True
        runtime.cancel_and_wait(run.future)  # interrupts the child kernel, stops generation
        self._finish(run, message("cancelled", id=run.id))

    def cancel_soon(self, run_id: str) -> bool:
        """Cancel on a thread of its own (the control thread must not wait for the child kernel to
        stop); whether `run_id` is the run in flight."""
        with self._lock:
            run = self._run
        if run is None or run.finished or run.id != run_id:
            return False
        threading.Thread(target=self.cancel, args=(run_id,), name="viscoder-cancel", daemon=True).start()
        return True

    def verdict(self, run_id: str, pressed: str) -> None:
        """The button the user pressed on a run's proposal, logged where the run was (settings.collect)."""
        job = self._jobs.get(run_id)
        if job is None or job.record_id is None or pressed not in _LOGGED_AS:
            return
        from ..core.dialogue_log import append_verdict, log_path

        try:
            append_verdict(log_path(job.settings), job.record_id, _LOGGED_AS[pressed])
        except OSError:  # the user's notebook matters more than the log
            log.warning("VisCoder: the verdict could not be logged", exc_info=True)

    # ------------------------------------------------------------------ outgoing
    async def _main(self, run: _Run, work) -> None:
        try:
            await work
        except asyncio.CancelledError:
            self._finish(run, message("cancelled", id=run.id))
            raise
        except Exception as exc:  # noqa: BLE001 (the panel must hear of any failure; the loop thread must not die)
            if run.cancelling:  # whatever stopping the child raised, the user asked for a stop
                self._finish(run, message("cancelled", id=run.id))
            elif isinstance(exc, ViscoderError):
                self._finish(run, _error(run.id, exc, run.sidebar_model))
            else:
                self._finish(
                    run, message("error", id=run.id, reason="internal", message=f"{type(exc).__name__}: {exc}")
                )

    def _event(self, run: _Run, event) -> None:
        if isinstance(event, TextStreamed):
            run.text.append(event.text)
            run.number = event.number
            if time.monotonic() - run.flushed_at >= _TEXT_FLUSH_SECONDS:
                self._flush(run)
            elif not run.flush_scheduled:  # the rest goes out shortly, even if the stream stops here
                run.flush_scheduled = True
                asyncio.get_running_loop().call_later(_TEXT_FLUSH_SECONDS, self._flush, run)
            return
        if isinstance(event, CodeWritten):
            self._flush(run)  # the whole reply is on screen before the code runs
            self.send(message("status", id=run.id, message=f"attempt {event.number}: running the code"))
        elif isinstance(event, DownloadProgress):
            self.send(download_message(run.id, event))
        elif isinstance(event, ReplyStarted) and event.new_tokens:  # a long prompt takes a while: say so
            self.send(message("status", id=run.id, message=f"attempt {event.number}: {reading_line(event)}"))
        elif isinstance(event, (Status, Notice)):
            self.send(message("status", id=run.id, message=event.message))
        elif isinstance(event, AttemptStarted):
            self.send(message("attempt", id=run.id, number=event.number, of=event.of))
        elif isinstance(event, AttemptFinished):
            attempt = event.attempt
            self._flush(run)
            if attempt.drew:
                for png in attempt.images:
                    self.send(
                        message("figure", id=run.id, number=attempt.number, png=base64.b64encode(png).decode("ascii"))
                    )
            if not attempt.ok:
                error = attempt.error
                self.send(
                    message(
                        "attempt_failed",
                        id=run.id,
                        number=attempt.number,
                        code=attempt.code or attempt.reply,
                        ename=error.ename,
                        evalue=error.one_line(),
                        error=error.feedback_text()[-4000:],
                    )
                )
        elif isinstance(event, Done):
            from ..core.verified import verified_text

            result = event.result
            self._finish(
                run,
                message(
                    "done",
                    id=run.id,
                    ok=result.ok,
                    code=result.code,
                    attempts=len(result.attempts),
                    seconds=round(sum(a.seconds for a in result.attempts), 3),
                    error=result.error.one_line() if result.error else "",
                    verified=verified_text(result.final, result.request) if result.final else "",
                    findings=[{key: getattr(f, key) for key in REVIEW_FINDING} for f in result.findings],
                ),
            )

    def _flush(self, run: _Run) -> None:
        run.flushed_at = time.monotonic()
        run.flush_scheduled = False
        if run.text and not run.finished:
            text, run.text = "".join(run.text), []
            self.send(message("text", id=run.id, number=run.number, text=text))

    def _finish(self, run: _Run, final: dict) -> None:
        with self._lock:
            if run.finished:
                return
            run.finished = True
        self.send(final)

    def send(self, data: dict) -> None:
        try:
            self.comm.send(data)
        except Exception:  # a closed comm or a kernel shutting down: nobody to tell
            log.debug("VisCoder comm message not sent", exc_info=True)


def _cancel_soon(comm_id: str, run_id: str) -> bool:
    """A cancel that came on the control channel (cancel_control), for the comm it names."""
    channel = _channels.get(comm_id)
    return channel is not None and channel.cancel_soon(run_id)


def _refused(exc: BadMessage) -> str:
    from .._version import __version__

    text = f"The kernel refused the sidebar's message: {exc}."
    if any(word in p.lower() for p in exc.problems for word in ("unknown", "undeclared", "missing")):
        text += (
            f" The sidebar and the kernel may run different versions of viscoder-jupyter (the kernel: {__version__})."
        )
    return text


def download_message(run_id: str, event: DownloadProgress) -> dict:
    return message(
        "download",
        id=run_id,
        what=event.what,
        done=int(event.bytes_done),
        total=int(event.bytes_total or 0),
        rate=round(float(event.rate or 0.0), 1),
        eta=round(float(event.eta), 1) if event.eta is not None else -1.0,
    )


#: Where the sidebar's user changes the model (JupyterLab's Settings Editor).
SIDEBAR_MODEL_SETTING = "the sidebar's Model setting (Settings > Settings Editor > VisCoder)"


def _error(run_id: str, exc: ViscoderError, sidebar_model: bool = False) -> dict:
    reason = "backend" if isinstance(exc, BackendUnavailable) else "bad_request"
    text = with_retry_hint(exc, "Press Fix again to retry.")
    if sidebar_model:  # the user chose the model there: name that, not the kernel's flags and variables
        text = naming_the_model_setting(text, SIDEBAR_MODEL_SETTING)
    return message("error", id=run_id, reason=reason, message=text)
