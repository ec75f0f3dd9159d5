"""Where the child kernel runs: in bubblewrap where that works here, under limits either way.

The sandbox (`bwrap`): an empty root with only what plotting needs bound read-only (the
system's libraries and fonts, the Python installation: mounts.py), so no home folder, working
directory, project or data mount; a private /tmp, no network (a fresh network namespace holds
only `lo`), its own pid namespace, and it dies with its parent. It may write to two fresh
folders only: `rw` (its ipc sockets, the frames, caches) and `scratch` (its
working directory). Started as root, the kernel drops to a throwaway uid, so it has no
capabilities, cannot enter the parent's private folder (connection file, master frames, log),
and RLIMIT_NPROC applies to it (the kernel never enforces NPROC on uid 0).

Limits, set by a tiny wrapper that execs the kernel (see `_WRAPPER`):
- RLIMIT_AS (memory_limit_mb): a memory bomb gets MemoryError, or dies; never the notebook.
- RLIMIT_FSIZE: no single file (scratch, the kernel log) grows past FILE_LIMIT_MB.
- RLIMIT_NPROC (processes and threads) only inside the sandbox: there it counts the sandbox
  alone (its own uid as root; its own user namespace otherwise). In a plain child it would
  count every process of the user, and root ignores it, so a plain child has none.
- RLIMIT_CPU is set by the kernel itself after its warm-up (executor), so imports don't count.
Not enforced: disk use by many files in scratch, total memory of many processes, and all of
the sandbox's file and network isolation in a plain child.

Either way the kernel gets an allowlisted environment (environment.py) with HOME its scratch
folder, and runs in a session of its own (no controlling terminal to type into).
A failed probe is tried again after RETRY_AFTER_S; a working one holds for the process.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from ..core.errors import ViscoderError
from ..core.settings import REQUIRE_SANDBOX_ENV, SANDBOX_MODES, sandbox_mode, sandbox_required_by_environment
from . import mounts
from .environment import kernel_env  # noqa: F401 - the executor's, next to kernel_command

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

MODES = SANDBOX_MODES  # VisCoder.sandbox
APT_INSTALL = "sudo apt-get install -y bubblewrap"
PROCESS_LIMIT = 256  # processes + threads in the sandbox; a warm kernel uses about 15
FILE_LIMIT_MB = 1024
TMPFS_LIMIT_MB = 512  # the private /tmp and /dev/shm live in RAM, outside RLIMIT_AS
PROBE_TIMEOUT = 20.0
RETRY_AFTER_S = 30.0  # a failed probe (bwrap installed meanwhile, a slow start under load) is tried again


class SandboxUnavailable(ViscoderError):
    """`sandbox = 'required'` but bubblewrap cannot run here."""


# ---- the wrapper that sets the limits and execs the kernel ---------------------------------
# Runs as `python -I -S -c _WRAPPER CONFIG ARGV...`: no imports beyond the C modules.
_WRAPPER = r"""
import json, os, resource, sys
cfg = json.loads(sys.argv[1])
for name, value in cfg["rlimits"].items():
    kind = getattr(resource, name)
    hard = resource.getrlimit(kind)[1]
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    try:
        resource.setrlimit(kind, (value, value))  # hard too: the code cannot raise it again
    except (ValueError, OSError):
        pass  # not enforceable here (RLIMIT_AS on macOS)
argv, uid, own = sys.argv[2:], cfg["uid"], cfg["own"]
try:
    os.setsid()  # no controlling terminal to push keystrokes into (TIOCSTI)
except OSError:
    pass  # a session leader already (jupyter_client starts it so)
env = dict(os.environ, HOME=own[1])  # its scratch folder
if uid is not None:  # root: the fresh folders go to the throwaway uid, then root is dropped
    src = cfg["connection_file"]
    if src:  # root's file, in a folder the kernel will not enter: it gets its own copy
        dst = os.path.join(own[0], "kernel.json")
        with open(src, "rb") as f, open(dst, "wb") as g:
            g.write(f.read())
        argv = [dst if a == src else a for a in argv]
    for top in own:
        for root, dirs, files in os.walk(top):
            for name in [os.path.join(root, n) for n in dirs + files] + [root]:
                os.lchown(name, uid, uid)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # also clears every capability
os.execve(argv[0], argv, env)
"""


def wrapper_argv(
    python: str, rlimits: dict[str, int], uid: int | None, own: list[str], connection_file: str | None = None
) -> list[str]:
    if os.name != "posix":
        return []  # no `resource` module: no limits
    config = json.dumps({"rlimits": rlimits, "uid": uid, "own": own, "connection_file": connection_file})
    return [python, "-I", "-S", "-c", _WRAPPER, config]


def rlimits(memory_mb: int, sandboxed: bool) -> dict[str, int]:
    limits = {"RLIMIT_FSIZE": FILE_LIMIT_MB * 2**20}
    if memory_mb > 0:
        limits["RLIMIT_AS"] = memory_mb * 2**20
    if sandboxed and _nproc_counts_the_sandbox_alone():
        limits["RLIMIT_NPROC"] = PROCESS_LIMIT
    return limits


def _nproc_counts_the_sandbox_alone() -> bool:
    """Root gives the kernel a fresh uid; other users get a user namespace, whose processes
    RLIMIT_NPROC counts apart from the user's others since Linux 5.14 (before, it counted
    every process of the user, the browser's threads too)."""
    if os.geteuid() == 0:
        return True
    try:
        major, minor = (int(x) for x in platform.release().split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (5, 14)


_PYTHONS = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}


def kernel_command(
    spec_argv: list[str], folders: tuple[str, str, str], connection_file: str, memory_mb: int, sandboxed: bool
) -> list[str]:
    """A kernel spec's argv run under the limits, inside bwrap when `sandboxed`.

    `folders`: (private, rw, scratch), as in `bwrap_argv`.
    """
    program = spec_argv[0]
    program = sys.executable if program in _PYTHONS else (shutil.which(program) or program)
    uid = sandbox_uid() if sandboxed else None
    wrapper = wrapper_argv(sys.executable, rlimits(memory_mb, sandboxed), uid, list(folders[1:]), connection_file)
    outer = bwrap_argv(*folders) + ["--"] if sandboxed else []
    return outer + wrapper + [program, *spec_argv[1:]]


# ---- bubblewrap ----------------------------------------------------------------------------
def bwrap_argv(private_dir: str, rw_dir: str, scratch_dir: str) -> list[str]:
    """bubblewrap's options, up to the command (binds are applied in this order).

    `private_dir` is the parent's (read-only here, and closed to the kernel's uid as root);
    the kernel writes to `rw_dir` and `scratch_dir` (its working directory) only.
    """
    # An empty root, then only what plotting needs (mounts.py): no home, project or data folder.
    argv = [shutil.which("bwrap") or "bwrap", *mounts.read_only_argv()]
    size = ["--size", str(TMPFS_LIMIT_MB * 2**20)] if _tmpfs_size else []
    argv += [
        "--dev",
        "/dev",
        "--perms",
        "1777",
        *size,
        "--tmpfs",
        "/dev/shm",
        "--proc",
        "/proc",
        "--tmpfs",
        "/run",
        "--perms",
        "1777",
        *size,
        "--tmpfs",
        "/tmp",
        # A Python installation under /tmp (CI clones, scratch venvs) must survive the private /tmp.
        *mounts.under_tmp(),
        "--ro-bind",
        private_dir,
        private_dir,
        "--bind",
        rw_dir,
        rw_dir,
        "--bind",
        scratch_dir,
        scratch_dir,
        # The root's own folders (made for the binds above) read-only too: no file lands there.
        "--remount-ro",
        "/",
        "--chdir",
        scratch_dir,
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        "viscoder-sandbox",
        "--die-with-parent",
        "--new-session",
        # ipykernel would watch for its parent by pid, which reads 1 in here: "parent exited".
        "--unsetenv",
        "JPY_PARENT_PID",
    ]
    if os.geteuid() == 0:  # keep only what the wrapper needs to hand the folders over and drop root
        argv += ["--cap-drop", "ALL"]
        for cap in ("CHOWN", "SETUID", "SETGID", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER"):
            argv += ["--cap-add", f"CAP_{cap}"]
    return argv


def sandbox_uid() -> int | None:
    """Root drops to a fresh uid (above systemd-nspawn's container range); others keep theirs."""
    return 0x7000_0000 + secrets.randbelow(0x0FFF_0000) if os.geteuid() == 0 else None


_tmpfs_size = True  # bwrap before 0.7 has no --size
_probe_lock = threading.Lock()
_works = False  # once a probe worked, for the process
_failed: tuple[str, float] | None = None  # the last failure and when (monotonic seconds)


def probe() -> str | None:
    """Start `python` once in the same sandbox as a kernel would get; None if it works, else why.

    A working sandbox is remembered; a failure only for RETRY_AFTER_S, then probed again.
    """
    global _works, _failed
    with _probe_lock:
        if _works:
            return None
        if _failed is not None and time.monotonic() - _failed[1] < RETRY_AFTER_S:
            return _failed[0]
        reason = _probe()
        _works, _failed = reason is None, None if reason is None else (reason, time.monotonic())
        return reason


def _probe() -> str | None:
    global _tmpfs_size
    if not sys.platform.startswith("linux"):
        return "bubblewrap needs Linux"
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    reason = _try_bwrap()
    if reason is not None and "--size" in reason:
        _tmpfs_size = False  # an older bwrap: its tmpfs are unbounded, the rest still holds
        reason = _try_bwrap()
    return reason


def _try_bwrap() -> str | None:
    with tempfile.TemporaryDirectory(prefix="vc-probe-") as top:
        private, rw, scratch = (os.path.join(top, name) for name in ("private", "rw", "scratch"))
        for folder in (private, rw, scratch):
            os.mkdir(folder, 0o700)
        argv = (
            bwrap_argv(private, rw, scratch)
            + ["--"]
            + wrapper_argv(sys.executable, rlimits(0, True), sandbox_uid(), [rw, scratch])
            + [sys.executable, "-c", "import json, os; print(os.getcwd())"]
        )
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bwrap could not start ({exc})"
        if done.returncode != 0 or done.stdout.strip() != scratch:
            lines = (done.stderr or done.stdout).strip().splitlines()
            return f"bwrap refused to run here ({lines[-1] if lines else f'exit code {done.returncode}'})"
    return None


_logged: set[str] = set()


def choose(mode: str) -> tuple[bool, str | None]:
    """(run sandboxed?, a one-line notice when falling back) for a `sandbox` setting.

    Every kernel that falls back gets the notice (the loop says it before each request's
    first attempt); 'required' without a working bwrap is an error.
    """
    if (mode or "auto").lower() not in MODES:
        raise ViscoderError(f"Unknown sandbox setting {mode!r}; choose one of: {', '.join(MODES)}.")
    mode = sandbox_mode(mode)  # VISCODER_REQUIRE_SANDBOX=1 outranks every setting
    if mode == "off":
        return False, None
    reason = probe()
    if reason is None:
        return True, None
    if mode == "required":
        if sandbox_required_by_environment():
            raise SandboxUnavailable(
                f"The sandbox is required ({REQUIRE_SANDBOX_ENV}=1 in the kernel's environment) but {reason}. "
                f"{how_to_fix(reason)}"
            )
        raise SandboxUnavailable(
            f"The sandbox is required (VisCoder.sandbox = 'required') but {reason}. {how_to_fix(reason)} "
            "Or set %config VisCoder.sandbox = 'auto' to run without it."
        )
    notice = (
        f"{reason}, so the generated code runs in a plain child process without the sandbox: "
        f"it can read your files and reach the network. {how_to_fix(reason)} "
        "Setting sandbox = 'off' runs it so without this note"
    )
    with _probe_lock:
        if reason not in _logged:
            _logged.add(reason)
            log.warning(notice)
    return False, notice


def how_to_fix(reason: str) -> str:
    """What makes the sandbox work here, for the reason the probe gave."""
    if not sys.platform.startswith("linux"):
        return "The sandbox needs Linux."
    if "not installed" in reason:
        return f"To sandbox it: {APT_INSTALL}."
    if "could not start" in reason:
        return "It is tried again at the next start of the child kernel."
    return (
        "Where bubblewrap may not make namespaces (Docker's defaults), start the container with "
        "--security-opt seccomp=unconfined --security-opt apparmor=unconfined, or allow "
        "unprivileged user namespaces on the host (sysctl kernel.unprivileged_userns_clone=1; "
        "on Ubuntu 24.04 kernel.apparmor_restrict_unprivileged_userns=0)."
    )
