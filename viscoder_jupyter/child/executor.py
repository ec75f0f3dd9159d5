"""Run generated plotting code in a warm child kernel, never the user's.

Thin over nbclient: a `NotebookClient` that does not own its `AsyncKernelManager`
runs each attempt as a one-cell notebook with `async_execute_cell`, so nbclient does
the waiting: shell reply, iopub outputs, a 1 s liveness poll (`DeadKernelError`) and
the timeout (`interrupt_on_timeout` + a sentinel `error_on_timeout` reply).
On top of it: a namespace reset before every attempt (a hook in the child), a
recovery check after an interrupt, a restart (warm-up + frames) after a death, a fresh
kernel for every request and attempt (a spare booted in the background), and the guard rails of
hostile code: the sandbox and limits (sandbox.py, limits.py), output bounded before it is
decoded (channels.py) and capped as it arrives (outputs.py), what an attempt left running
killed (processes.py), and the frames it was given checked for changes.

All coroutines must run on one event loop (the zmq sockets belong to it).
nbclient and nbformat are imported lazily: importing them costs about a second.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import pickle
import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.errors import (
    AttemptError,
    ChildKernelDied,
    CodeRaised,
    ExecutionTimeout,
    FramesChanged,
    RequestError,
    ViscoderError,
)
from ..core.settings import setting_default
from . import boot, limits, outputs, processes
from . import sandbox as sb
from .folders import Folders, seed_matplotlib_cache
from .fresh import FreshKernels

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())
# nbclient logs a timeout we asked for at ERROR level; keep it out of the user's cell.
_nbclient_log = log.getChild("nbclient")
_nbclient_log.setLevel(logging.CRITICAL)

RECOVERY_TIMEOUT = 3.0  # a `pass` must run this soon after an interrupt, or we restart
COPY_BYTES_PER_S = 200e6  # allowance for the per-attempt copy of the frames, on top of the timeout
LOAD_TIMEOUT = 600.0  # unpickling the frames once per request
SHUTDOWN_GRACE = 10.0  # jupyter_client's kill-and-wait; past it we kill again and go on
THREAD_SLACK = 32  # threads an attempt may leave behind before the kernel is replaced
_TIMEOUT_ENAME = "_ViscoderTimeout"  # nbclient's synthetic reply after it interrupted


@dataclass
class ExecutionOutcome:
    """What one attempt produced."""

    images: list[bytes]  # PNG bytes of every image/png displayed, in order
    plotly_json: list[dict]  # application/vnd.plotly.v1+json payloads, in order
    stdout: str  # stream output (stdout and stderr as they came), capped
    error: AttemptError | None
    seconds: float  # wall time of the whole attempt, reset and recovery included
    truncated: bool = False  # output past the caps was dropped
    figure_facts: list[dict] | None = None  # per matplotlib figure: marks per axes, crowded ticks
    frames_changed: FramesChanged | None = None  # the code changed a frame it was given (a check)

    @property
    def has_figure(self) -> bool:
        return bool(self.images or self.plotly_json)


class ChildKernel(FreshKernels):
    """A warm IPython kernel in a child process that runs one attempt at a time.

    `sandbox` ('auto', 'required', 'off'), `memory_limit_mb` and `cpu_time_limit_s`
    mirror the `VisCoder` settings; 0 means no limit. `is_alive` is a cheap synchronous
    check of the kernel process. `async_run` raises only when the kernel cannot be
    (re)started; every failure of the code itself comes back as `ExecutionOutcome.error`.
    """

    def __init__(
        self,
        kernel_name: str = "python3",
        startup_timeout: float = 60.0,
        *,
        sandbox: str = setting_default("sandbox"),
        memory_limit_mb: int = setting_default("memory_limit_mb"),
        cpu_time_limit_s: int = setting_default("cpu_time_limit_s"),
        fresh_per_request: bool = True,
        fresh_per_attempt: bool = True,
    ):
        self.kernel_name = kernel_name
        # Each request, and each attempt the loop announces (`next_attempt`), gets a kernel no attempt
        # has run in: hooks, patched libraries, options and modules an attempt left behind reach no
        # later attempt (fresh.py). A spare boots in the background. Off: attempts of a request share
        # one kernel (per attempt off), or every request does too (per request off: the benchmark's before).
        self.fresh_per_request = fresh_per_request
        self.fresh_per_attempt = fresh_per_attempt
        self._fresh_pending = False  # the next attempt runs in a fresh kernel
        self._holds_frames = False  # as a spare: a request's frames are (being) loaded into it
        self.startup_timeout = startup_timeout
        self.sandbox, self.memory_limit_mb, self.cpu_time_limit_s = sandbox, memory_limit_mb, cpu_time_limit_s
        self.sandboxed: bool | None = None  # decided at each start
        self.sandbox_notice: str | None = None  # one line saying why it runs without the sandbox
        self._km: Any = None  # AsyncKernelManager, one per kernel process
        self._nb: Any = None  # outputs.capped_client_class() instance
        self._start_lock = asyncio.Lock()
        self._run_lock = asyncio.Lock()
        self._folders = Folders()  # ours (private), and the kernel's (rw, scratch)
        self._log_file: Any = None
        self._closed = False
        self._used = False  # an attempt ran in this kernel process
        self._cgroup: str | None = None  # the kernel's own cgroup, where one could be made
        self._spare: ChildKernel | None = None  # booting or ready, for the next attempt or request
        self._spare_boot: asyncio.Task | None = None
        self._retiring: set[asyncio.Task] = set()  # old kernels shutting down
        self._frame_prints: dict[str, str | None] = {}  # the frames as loaded, kept here
        self._stale = False  # settings changed: restart before the next attempt
        self._cancelled = False  # an attempt was cancelled: check the child is idle
        self._copy_seconds = 0.0  # extra time per attempt for copying the frames
        self._vitals = processes.Vitals(None, 0)  # the kernel's pid, threads and CPU after warm-up

    def configure(self, *, sandbox: str, memory_limit_mb: int, cpu_time_limit_s: int) -> None:
        """New settings take effect at the next (re)start; a running kernel is replaced
        before its next attempt."""
        new = (sandbox, memory_limit_mb, cpu_time_limit_s)
        if new != (self.sandbox, self.memory_limit_mb, self.cpu_time_limit_s):
            self.sandbox, self.memory_limit_mb, self.cpu_time_limit_s = new
            self._stale = self._nb is not None  # the spare, booted with the old ones, is dropped then

    # ---- hooks: how the kernel process is started ------------------------------------
    def _kernel_cmd(self, spec_argv: list[str]) -> list[str]:
        """The kernel spec's argv (with `{connection_file}`) under the limits, in the sandbox."""
        f = self._folders
        assert f.private and f.rw and f.scratch
        return sb.kernel_command(
            spec_argv,
            (f.private, f.rw, f.scratch),
            os.path.join(f.private, "kernel.json"),
            self.memory_limit_mb,
            bool(self.sandboxed),
        )

    def _kernel_env(self) -> dict[str, str]:
        return sb.kernel_env(os.environ, self._folders.rw if self.sandboxed else None)

    # ---- lifecycle -------------------------------------------------------------------
    @property
    def is_alive(self) -> bool:
        proc = self._process()
        return proc is not None and proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The process we started: the kernel, or bwrap around it."""
        proc = self._process()
        return proc.pid if proc is not None else None

    @property
    def kernel_pid(self) -> int | None:
        """The kernel's own process (inside the sandbox), as this process sees it."""
        return self._vitals.pid if self.is_alive else None

    @property
    def connection_info(self) -> dict[str, Any] | None:
        return self._km.get_connection_info() if self._km is not None else None

    @property
    def scratch_dir(self) -> str | None:
        return self._folders.scratch

    @property
    def _private_dir(self) -> str | None:
        return self._folders.private

    def take_notices(self) -> list[str]:
        """What the user should hear about how the code runs, at every request: the fallback to a
        plain child process, and why. The loop turns each into a `Notice` event for every front end."""
        notice = sb.choose(self.sandbox)[1] if self._stale else self.sandbox_notice  # how this request runs
        return [notice] if notice else []

    async def async_start(self) -> None:
        async with self._start_lock:
            if self._nb is not None:
                return
            self._closed = False
            self._folders.renew()
            await self._boot()

    async def async_shutdown(self) -> None:
        self._closed = True
        if self._spare is not None:
            self._retire(self._spare, self._spare_boot)
            self._spare = self._spare_boot = None
        try:
            await asyncio.gather(*self._retiring, return_exceptions=True)
            await self._teardown()
        except Exception:  # noqa: BLE001 - shutdown never raises
            log.debug("child kernel teardown failed", exc_info=True)
        finally:
            self._folders.remove()

    def shutdown_now(self) -> None:
        """Best effort, synchronous, for atexit: kill the kernel's process group."""
        self._closed = True
        for spare in [self._spare] if self._spare is not None else []:
            spare.shutdown_now()
        self._kill_processes()
        self._folders.remove()

    async def async_interrupt(self) -> None:
        """Interrupt whatever the child runs (the caller's Ctrl-C)."""
        if self._km is not None and self.is_alive:
            try:
                await self._km.interrupt_kernel()
            except Exception:  # noqa: BLE001
                log.debug("interrupt failed", exc_info=True)

    # ---- requests --------------------------------------------------------------------
    async def async_load_frames(self, frames: dict[str, pd.DataFrame]) -> None:
        for name in frames:
            if not str(name).isidentifier():
                raise RequestError(f"Frame name {name!r} is not a Python identifier.")
        try:
            data = pickle.dumps(dict(frames), protocol=5)
        except Exception as e:  # noqa: BLE001
            raise RequestError(f"Cannot hand the frames to the child kernel: {e}") from e
        self._copy_seconds = len(data) / COPY_BYTES_PER_S
        await self.async_start()
        async with self._run_lock:
            await self._fresh_for_request()
            if not self._folders.save_frames(data):
                self._stale = True  # the code left something in the way: a fresh kernel, fresh folders
            if self._stale or not self.is_alive or not await self._settled():
                await self._restart()  # loads the new frames
            else:
                await self._load_frames()
            if self.fresh_per_attempt:  # the second attempt's kernel boots while the model writes the first
                self._start_spare()

    async def async_run(self, code: str, timeout: float) -> ExecutionOutcome:
        started = time.monotonic()
        await self.async_start()
        async with self._run_lock:
            try:
                return await self._run_locked(code, timeout, started)
            except asyncio.CancelledError:
                await self.async_interrupt()  # stop the code; the kernel stays warm
                self._cancelled = True  # checked before the next request uses the kernel
                raise

    async def _run_locked(self, code: str, timeout: float, started: float) -> ExecutionOutcome:
        from nbclient.exceptions import DeadKernelError

        from . import channels

        if self._fresh_pending and self._used:
            await self._fresh_for_attempt()
        if self._stale or not self.is_alive or self._vitals.cpu_running_out() or not await self._settled():
            await self._restart()
        # The child resets the namespace before the code (a pre_run_cell hook), copying the
        # frames: their copy gets time on top of the attempt's own.
        cell = self._cell(code, timeout + self._copy_seconds)
        error: AttemptError | None = None
        nb, self._used = self._nb, True
        try:
            reply = await self._execute(cell, interrupt=True, store_history=True)
        except DeadKernelError:
            task = asyncio.current_task()
            cancelling = getattr(task, "cancelling", lambda: 0)()  # Python 3.11+
            if cancelling or self.is_alive:
                raise asyncio.CancelledError from None  # nbclient's name for our cancellation
            error = ChildKernelDied(self._death_detail())
            await self._restart()
            reply = None
        await self._kill_leftovers()  # first: a fork bomb's copies would starve the recovery check
        limits.mark_for_oom(self.pid if self.is_alive else None)  # the code may have lowered it
        too_big, lost = await channels.too_big(nb) if reply is not None else (None, False)
        truncated = nb.truncated  # before a recovery check runs a cell of its own
        got = outputs.collect(cell.outputs, truncated)
        if error is None and reply is not None:
            if reply.get("status") == "error" and reply.get("ename") == _TIMEOUT_ENAME:
                error = too_big or ExecutionTimeout(timeout)
                if not await self._responds():
                    log.info("child kernel ignored the interrupt; restarting it")
                    await self._restart()
            elif too_big is not None:
                error = too_big
            elif got.error is not None:  # also catches errors raised while drawing
                error = CodeRaised.from_reply(got.error)
                error.runtime_facts = tuple(got.error_facts)
            elif nb.problem or got.problem:
                error = CodeRaised(
                    "UnreadableOutput",
                    f"The code's output could not be read: {nb.problem or got.problem}. Show the figure "
                    "with plt.show() (fig.show() for plotly) and display nothing else.",
                    "",
                )
            elif reply.get("status") != "ok":
                error = CodeRaised.from_reply(outputs.cap_error({**reply, "ename": reply.get("ename") or "Aborted"}))
        if lost:
            log.info("a message over the size cap cut the child kernel's connection; restarting it")
            await self._restart()
        elif self.is_alive and self._vitals.threads_left_over(THREAD_SLACK):
            log.info("the generated code left threads running; restarting the child kernel")
            await self._restart()
        self._start_spare()
        outcome = ExecutionOutcome(
            got.images, got.plotly_json, got.stdout, error, time.monotonic() - started, truncated, got.figure_facts
        )
        if error is None and got.frame_prints is not None:
            outcome.frames_changed = self._frames_changed(got.frame_prints)
        return outcome

    def _frames_changed(self, report: dict) -> FramesChanged | None:
        """The frames' names hold what was loaded, by the prints kept here since loading (the
        child reports the prints after the attempt, and says how a frame changed)."""
        after, how = report.get("prints", {}), report.get("changes", {})
        changed = {name: how.get(name) or "" for name, kept in self._frame_prints.items() if after.get(name, 0) != kept}
        return FramesChanged(changed) if changed else None

    # ---- internals -------------------------------------------------------------------
    def _process(self) -> subprocess.Popen | None:
        return getattr(getattr(self._km, "provisioner", None), "process", None)

    async def _boot(self) -> None:
        """Start a kernel process, its client, the warm-up and the frames."""
        import nbformat
        from jupyter_client.manager import AsyncKernelManager

        if self._closed:
            raise ViscoderError("The child kernel was shut down.")
        private, rw = self._folders.private, self._folders.rw
        assert private and rw
        self.sandboxed, self.sandbox_notice = await asyncio.to_thread(sb.choose, self.sandbox)
        self._stale = self._cancelled = False
        km = AsyncKernelManager(
            kernel_name=self.kernel_name,
            transport="ipc",
            ip=os.path.join(rw, "k"),
            connection_file=os.path.join(private, "kernel.json"),
            log=_nbclient_log,
        )
        km.kernel_spec.argv = self._kernel_cmd(km.kernel_spec.argv)
        km.client_class = "viscoder_jupyter.child.channels.BoundedKernelClient"
        limits.bound_sockets(km.context)  # its control socket: replies to interrupts, never read
        if self.sandboxed:
            # bwrap does not pass SIGINT on; ipykernel interrupts itself on a control message.
            km.kernel_spec.interrupt_mode = "message"
            seed_matplotlib_cache(rw)
        nb = outputs.capped_client_class()(
            nbformat.v4.new_notebook(),
            km=km,
            kernel_name=self.kernel_name,
            allow_errors=True,
            record_timing=False,
            coalesce_streams=False,
            interrupt_on_timeout=True,
            store_widget_state=False,
            error_on_timeout={"ename": _TIMEOUT_ENAME, "evalue": "", "traceback": []},
            timeout_func=lambda cell: cell.metadata.get("viscoder_timeout"),
            startup_timeout=max(1, math.ceil(self.startup_timeout)),
            extra_arguments=["--InteractiveShell.colors=nocolor"],  # hist_file=:memory: is nbclient's
            log=_nbclient_log,
        )
        nb.on_cell_executed = lambda cell, cell_index, execute_reply: setattr(nb, "last_reply", execute_reply)
        self._log_file = open(os.path.join(private, "kernel.log"), "ab")  # noqa: SIM115
        self._km, self._nb, self._used = km, nb, False
        try:
            await nb.async_start_new_kernel(
                cwd=self._folders.scratch,
                env=self._kernel_env(),
                stdout=self._log_file,
                stderr=self._log_file,
            )
            await nb.async_start_new_kernel_client()
            # Before any code of ours runs in it: the kernel is what the OOM killer takes first.
            self._cgroup = limits.protect_parent(self.pid, self.memory_limit_mb)
            await self._quiet(boot.warmup_code(self.cpu_time_limit_s), self.startup_timeout, "warm-up")
            if self._folders.has_frames:
                await self._load_frames()
        except BaseException:
            await self._teardown()
            raise
        pid = processes.find_kernel(self.pid, bool(self.sandboxed)) if self.pid else None
        self._vitals = processes.Vitals(pid, self.cpu_time_limit_s)

    async def _load_frames(self) -> None:
        got = outputs.collect(
            await self._quiet(boot.load_code(self._folders.kernel_frames), LOAD_TIMEOUT, "loading the frames")
        )
        self._frame_prints = dict(got.frame_prints["prints"]) if got.frame_prints else {}

    async def _kill_leftovers(self) -> None:
        """Kill the processes the code left running (the kernel itself stays)."""
        pid, root = self._vitals.pid, self.pid
        if pid and root and self.is_alive:
            killed = await asyncio.to_thread(processes.kill_strays, root, pid)
            if killed:
                log.info("killed %d process(es) the generated code left running", killed)

    async def _teardown(self) -> None:
        nb, km, self._nb, self._km = self._nb, self._km, None, None
        try:
            if nb is not None and nb.kc is not None:
                nb.kc.stop_channels()
            if km is not None and km.has_kernel:
                # No polite shutdown: nothing in the child is worth saving (its frames are copies),
                # and code that ignores SIGTERM or sleeps in atexit must not hold us up. Leftovers
                # first, or a plain child's orphans would escape.
                self._kill_processes(km)
                try:  # reaps, removes the ipc files
                    await asyncio.wait_for(km.shutdown_kernel(now=True), SHUTDOWN_GRACE)
                except asyncio.TimeoutError:
                    log.warning("child kernel did not stop in %g s; killed it", SHUTDOWN_GRACE)
                    self._kill_processes(km)
        finally:
            self._vitals = processes.Vitals(None, 0)
            limits.release(self._cgroup)
            self._cgroup = None
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None

    def _kill_processes(self, km: Any = None) -> None:
        """SIGKILL the kernel's process group and whatever the code left; synchronous."""
        provisioner = getattr(km or self._km, "provisioner", None)
        proc = getattr(provisioner, "process", None)
        if proc is not None:
            processes.kill_all(proc, getattr(provisioner, "pgid", None), self._vitals.pid)

    async def _restart(self) -> None:
        await self._teardown()
        self._folders.renew()
        await self._boot()

    def _death_detail(self) -> str:
        proc = self._process()
        return processes.death_detail(
            proc.poll() if proc is not None else None, bool(self.sandboxed), self.cpu_time_limit_s
        )

    @staticmethod
    def _cell(source: str, timeout: float | None) -> Any:
        import nbformat

        return nbformat.v4.new_code_cell(source, metadata={"viscoder_timeout": timeout})

    async def _execute(self, cell: Any, *, interrupt: bool, store_history: bool = False) -> dict[str, Any] | None:
        """Run one cell; return the execute_reply content (nbclient's sentinel on timeout)."""
        nb = self._nb
        assert nb is not None
        nb.nb.cells = [cell]
        nb.reset_execution_trackers()
        nb.reset_caps()
        nb.interrupt_on_timeout = interrupt
        nb.last_reply = None
        await nb.async_execute_cell(cell, 0, store_history=store_history)
        return (nb.last_reply or {}).get("content")

    async def _quiet(self, source: str, timeout: float, what: str) -> list:
        """Run our own code (not the attempt's); any failure is ours, so raise. Returns its outputs."""
        cell = self._cell(source, timeout)
        reply = await self._execute(cell, interrupt=False)
        if reply is None or reply.get("status") != "ok":
            err = CodeRaised.from_reply(outputs.cap_error(reply or {}))
            raise ViscoderError(f"Child kernel failed while {what}: {err.feedback_text()}")
        return cell.outputs

    async def _settled(self) -> bool:
        """False when a cancelled attempt may still run: its interrupt can land before the code
        starts, or inside the namespace reset (IPython's hooks catch KeyboardInterrupt), and the
        next request would queue behind it. Seen on a loaded machine: Cancel, then a new fix hung."""
        if not self._cancelled:
            return True
        self._cancelled = False
        return await self._responds()

    async def _responds(self) -> bool:
        from nbclient.exceptions import CellTimeoutError, DeadKernelError

        try:
            await self._execute(self._cell("pass", RECOVERY_TIMEOUT), interrupt=False)
            return True
        except (CellTimeoutError, DeadKernelError):
            return False
