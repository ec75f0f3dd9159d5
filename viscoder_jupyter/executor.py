"""Run generated plotting code in a warm child kernel, never the user's.

Thin over nbclient: a `NotebookClient` that does not own its `AsyncKernelManager`
runs each attempt as a one-cell notebook with `async_execute_cell`, so nbclient does
the waiting: shell reply, iopub outputs, a 1 s liveness poll (`DeadKernelError`) and
the timeout (`interrupt_on_timeout` + a sentinel `error_on_timeout` reply).
On top of it: a quiet preamble that resets the namespace before every attempt, a
recovery check after an interrupt, and a restart (warm-up + frames) after a death.

All coroutines must run on one event loop (the zmq sockets belong to it).
nbclient and nbformat are imported lazily: importing them costs about a second.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import os
import pickle
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import (AttemptError, ChildKernelDied, CodeRaised, ExecutionTimeout,
                     RequestError, ViscoderError)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from nbclient import NotebookClient

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())
# nbclient logs a timeout we asked for at ERROR level; keep it out of the user's cell.
_nbclient_log = log.getChild("nbclient")
_nbclient_log.setLevel(logging.CRITICAL)

STDOUT_CAP = 20_000
RECOVERY_TIMEOUT = 3.0    # a `pass` must run this soon after an interrupt, or we restart
PREAMBLE_TIMEOUT = 120.0  # resetting the namespace deep-copies the frames
LOAD_TIMEOUT = 600.0      # unpickling the frames once per request
PLOTLY_MIME = "application/vnd.plotly.v1+json"
_TIMEOUT_ENAME = "_ViscoderTimeout"  # nbclient's synthetic reply after it interrupted

# Lives in the child as module `_viscoder_child`, outside the user namespace.
_CHILD_SRC = '''
import copy, os, pickle, warnings
import matplotlib, matplotlib.pyplot as plt, pandas as pd
state = {"baseline": {}, "rc": {}, "frames": {}, "cwd": os.getcwd()}

def take_baseline(ip):
    state["baseline"] = dict(ip.user_ns)
    state["rc"] = {k: v for k, v in matplotlib.rcParams.items() if k != "backend"}

def load_frames(path):
    with open(path, "rb") as f:
        state["frames"] = pickle.load(f)

def reset(ip):
    ns, base = ip.user_ns, state["baseline"]
    for name in [n for n in ns if n not in base]:  # everything earlier attempts defined
        del ns[name]
    ns.update({k: v for k, v in base.items() if not k.startswith("_")})  # pd, plt, ... rebound
    ns.update({k: "" for k in ("_", "__", "___") if k in ns})
    ns.get("_oh", {}).clear()
    plt.close("all")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        matplotlib.rcParams.update(state["rc"])  # sns.set_theme() and the like
    os.chdir(state["cwd"])
    for name, frame in state["frames"].items():
        deep = isinstance(frame, (pd.DataFrame, pd.Series))
        ns[name] = frame.copy(deep=True) if deep else copy.deepcopy(frame)
'''

_WARMUP = f"""\
%matplotlib inline
import pandas as pd
import numpy as np
import matplotlib.pyplot as plt
def __viscoder_boot(src):
    import sys, types
    mod = types.ModuleType("_viscoder_child")
    exec(compile(src, "<viscoder_child>", "exec"), mod.__dict__)
    sys.modules["_viscoder_child"] = mod
    mod.take_baseline(get_ipython())
__viscoder_boot({_CHILD_SRC!r})
del __viscoder_boot
"""
_RESET = '__import__("_viscoder_child").reset(get_ipython())'


@dataclass
class ExecutionOutcome:
    """What one attempt produced."""

    images: list[bytes]        # PNG bytes of every image/png displayed, in order
    plotly_json: list[dict]    # application/vnd.plotly.v1+json payloads, in order
    stdout: str                # stream output (stdout and stderr as they came), capped
    error: AttemptError | None
    seconds: float             # wall time of the whole attempt, reset and recovery included

    @property
    def has_figure(self) -> bool:
        return bool(self.images or self.plotly_json)


class ChildKernel:
    """A warm IPython kernel in a child process that runs one attempt at a time.

    `is_alive` is a cheap synchronous check of the kernel process.
    `async_run` raises only when the kernel cannot be (re)started; every failure of
    the code itself comes back as `ExecutionOutcome.error`.
    """

    def __init__(self, kernel_name: str = "python3", startup_timeout: float = 60.0):
        self.kernel_name = kernel_name
        self.startup_timeout = startup_timeout
        self._km: Any = None                   # AsyncKernelManager, one per kernel process
        self._nb: NotebookClient | None = None
        self._start_lock = asyncio.Lock()
        self._run_lock = asyncio.Lock()
        self._private_dir: str | None = None   # ipc sockets, connection file, frames, log
        self._scratch_dir: str | None = None   # the kernel's cwd
        self._frames_path: str | None = None
        self._log_file: Any = None
        self._last_reply: dict | None = None
        self._closed = False

    # ---- hooks for a later sandbox ---------------------------------------------------
    def _kernel_cmd(self) -> list[str] | None:
        """argv template (with `{connection_file}`) replacing the kernel spec's; None keeps it."""
        return None

    def _kernel_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JPY_")}
        env.pop("PYDEVD_IPYTHON_COMPATIBLE_DEBUGGING", None)
        env.update(
            MPLBACKEND="module://matplotlib_inline.backend_inline",
            PYTHONUNBUFFERED="1",
            PLOTLY_RENDERER="plotly_mimetype",  # fig.show() emits the JSON we capture
            PYDEVD_DISABLE_FILE_VALIDATION="1",  # debugpy's frozen-modules warning
        )
        return env

    # ---- lifecycle -------------------------------------------------------------------
    @property
    def is_alive(self) -> bool:
        proc = self._process()
        return proc is not None and proc.poll() is None

    @property
    def pid(self) -> int | None:
        proc = self._process()
        return proc.pid if proc is not None else None

    @property
    def connection_info(self) -> dict[str, Any] | None:
        return self._km.get_connection_info() if self._km is not None else None

    @property
    def scratch_dir(self) -> str | None:
        return self._scratch_dir

    async def async_start(self) -> None:
        async with self._start_lock:
            if self._nb is not None:
                return
            self._closed = False
            self._make_dirs()
            await self._boot()

    async def async_shutdown(self) -> None:
        self._closed = True
        try:
            await self._teardown()
        except Exception:  # noqa: BLE001 - shutdown never raises
            log.debug("child kernel teardown failed", exc_info=True)
        finally:
            self._frames_path = None
            self._remove_dirs()

    def shutdown_now(self) -> None:
        """Best effort, synchronous, for atexit: kill the kernel's process group."""
        self._closed = True
        proc = self._process()
        pgid = getattr(getattr(self._km, "provisioner", None), "pgid", None)
        try:
            if proc is not None and proc.poll() is None:
                if pgid and hasattr(os, "killpg") and pgid != os.getpgid(0):
                    os.killpg(pgid, signal.SIGKILL)
                else:
                    proc.kill()
            if proc is not None:
                proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self._remove_dirs()

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
        await self.async_start()
        async with self._run_lock:
            assert self._private_dir is not None
            path = os.path.join(self._private_dir, "frames.pkl")
            with open(path + ".tmp", "wb") as f:
                f.write(data)
            os.replace(path + ".tmp", path)
            self._frames_path = path
            if not self.is_alive:
                await self._restart()  # loads the new frames
            else:
                await self._quiet(self._load_code(), LOAD_TIMEOUT, "loading the frames")

    async def async_run(self, code: str, timeout: float) -> ExecutionOutcome:
        started = time.monotonic()
        await self.async_start()
        async with self._run_lock:
            try:
                return await self._run_locked(code, timeout, started)
            except asyncio.CancelledError:
                await self.async_interrupt()  # stop the code; the kernel stays warm
                raise

    async def _run_locked(self, code: str, timeout: float, started: float) -> ExecutionOutcome:
        from nbclient.exceptions import DeadKernelError
        if not self.is_alive:
            await self._restart()
        await self._quiet(_RESET, PREAMBLE_TIMEOUT, "resetting the namespace")
        cell = self._cell(code, timeout)
        error: AttemptError | None = None
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
        images, plotly_json, stdout, error_output = _collect(cell.outputs)
        if error is None and reply is not None:
            if reply.get("status") == "error" and reply.get("ename") == _TIMEOUT_ENAME:
                error = ExecutionTimeout(timeout)
                if not await self._responds():
                    log.info("child kernel ignored the interrupt; restarting it")
                    await self._restart()
            elif error_output is not None:  # also catches errors raised while drawing
                error = CodeRaised.from_reply(error_output)
            elif reply.get("status") != "ok":
                error = CodeRaised.from_reply({"ename": "Aborted", **reply})
        return ExecutionOutcome(images, plotly_json, stdout, error, time.monotonic() - started)

    # ---- internals -------------------------------------------------------------------
    def _process(self) -> subprocess.Popen | None:
        return getattr(getattr(self._km, "provisioner", None), "process", None)

    def _make_dirs(self) -> None:
        if not (self._private_dir and os.path.isdir(self._private_dir)):
            self._private_dir = tempfile.mkdtemp(prefix="vc-")  # short: ipc paths max ~100 chars
        if not (self._scratch_dir and os.path.isdir(self._scratch_dir)):
            self._scratch_dir = tempfile.mkdtemp(prefix="viscoder-scratch-")

    def _remove_dirs(self) -> None:
        for path in filter(None, (self._private_dir, self._scratch_dir)):
            shutil.rmtree(path, ignore_errors=True)
        self._private_dir = self._scratch_dir = None

    def _load_code(self) -> str:
        return f'__import__("_viscoder_child").load_frames({self._frames_path!r})'

    async def _boot(self) -> None:
        """Start a kernel process, its client, the warm-up and the frames."""
        import nbformat
        from jupyter_client.manager import AsyncKernelManager
        from nbclient import NotebookClient

        if self._closed:
            raise ViscoderError("The child kernel was shut down.")
        assert self._private_dir is not None
        km = AsyncKernelManager(
            kernel_name=self.kernel_name, transport="ipc",
            ip=os.path.join(self._private_dir, "k"),
            connection_file=os.path.join(self._private_dir, "kernel.json"), log=_nbclient_log,
        )
        argv = self._kernel_cmd()
        if argv is not None:
            km.kernel_spec.argv = argv
        nb = NotebookClient(
            nbformat.v4.new_notebook(), km=km, kernel_name=self.kernel_name,
            allow_errors=True, record_timing=False, coalesce_streams=False,
            interrupt_on_timeout=True,
            error_on_timeout={"ename": _TIMEOUT_ENAME, "evalue": "", "traceback": []},
            timeout_func=lambda cell: cell.metadata.get("viscoder_timeout"),
            startup_timeout=max(1, math.ceil(self.startup_timeout)),
            extra_arguments=["--InteractiveShell.colors=nocolor"],  # hist_file=:memory: is nbclient's
            on_cell_executed=self._on_cell_executed, log=_nbclient_log,
        )
        self._log_file = open(os.path.join(self._private_dir, "kernel.log"), "ab")  # noqa: SIM115
        self._km, self._nb = km, nb
        try:
            await nb.async_start_new_kernel(
                cwd=self._scratch_dir, env=self._kernel_env(),
                stdout=self._log_file, stderr=self._log_file,
            )
            await nb.async_start_new_kernel_client()
            await self._quiet(_WARMUP, self.startup_timeout, "warm-up")
            if self._frames_path:
                await self._quiet(self._load_code(), LOAD_TIMEOUT, "loading the frames")
        except BaseException:
            await self._teardown()
            raise

    async def _teardown(self) -> None:
        nb, km, self._nb, self._km = self._nb, self._km, None, None
        try:
            if nb is not None and nb.kc is not None:
                nb.kc.stop_channels()
            if km is not None and km.has_kernel:
                await km.shutdown_kernel(now=True)  # kills, reaps, removes ipc files
        finally:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None

    async def _restart(self) -> None:
        await self._teardown()
        self._make_dirs()
        await self._boot()

    def _death_detail(self) -> str:
        proc = self._process()
        code = proc.poll() if proc is not None else None
        if code is None or code >= 0:
            return "" if code is None else f"exit code {code}"
        return f"killed by {signal.Signals(-code).name}" if -code in signal.valid_signals() \
            else f"killed by signal {-code}"

    @staticmethod
    def _cell(source: str, timeout: float | None) -> Any:
        import nbformat
        return nbformat.v4.new_code_cell(source, metadata={"viscoder_timeout": timeout})

    def _on_cell_executed(self, cell: Any, cell_index: int, execute_reply: dict) -> None:
        self._last_reply = execute_reply

    async def _execute(self, cell: Any, *, interrupt: bool,
                       store_history: bool = False) -> dict[str, Any] | None:
        """Run one cell; return the execute_reply content (nbclient's sentinel on timeout)."""
        nb = self._nb
        assert nb is not None
        nb.nb.cells = [cell]
        nb.reset_execution_trackers()
        nb.interrupt_on_timeout = interrupt
        self._last_reply = None
        await nb.async_execute_cell(cell, 0, store_history=store_history)
        return (self._last_reply or {}).get("content")

    async def _quiet(self, source: str, timeout: float, what: str) -> None:
        """Run our own code (not the attempt's); any failure is ours, so raise."""
        cell = self._cell(source, timeout)
        reply = await self._execute(cell, interrupt=False)
        if reply is None or reply.get("status") != "ok":
            err = CodeRaised.from_reply(reply or {})
            raise ViscoderError(f"Child kernel failed while {what}: {err.feedback_text()}")

    async def _responds(self) -> bool:
        from nbclient.exceptions import CellTimeoutError, DeadKernelError
        try:
            await self._execute(self._cell("pass", RECOVERY_TIMEOUT), interrupt=False)
            return True
        except (CellTimeoutError, DeadKernelError):
            return False


def _collect(outputs: list) -> tuple[list[bytes], list[dict], str, dict | None]:
    images: list[bytes] = []
    plotly_json: list[dict] = []
    text: list[str] = []
    error = None
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            text.append(out.get("text", ""))
        elif kind in ("display_data", "execute_result"):
            data = out.get("data", {})
            if data.get("image/png"):
                images.append(base64.b64decode(data["image/png"]))
            if data.get(PLOTLY_MIME):
                plotly_json.append(json.loads(json.dumps(data[PLOTLY_MIME])))
        elif kind == "error" and error is None:
            error = dict(out)
    stdout = "".join(text)
    if len(stdout) > STDOUT_CAP:
        stdout = stdout[:STDOUT_CAP] + "\n[... truncated]"
    return images, plotly_json, stdout, error
