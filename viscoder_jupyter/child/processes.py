"""The child kernel's process tree, read from /proc (Linux): the kernel, what the generated
code left running, how it died. Elsewhere the checks that need these facts are skipped."""

from __future__ import annotations

import os
import signal
import subprocess


def _stat(pid: int | str) -> tuple[int, int, str] | None:
    """(ppid, process group, state letter) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[1]), int(fields[2]), fields[0]
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    row = _stat(pid)
    return row is not None and row[2] not in "ZX"


def _table() -> dict[int, tuple[int, int, str]]:
    try:
        names = os.listdir("/proc")
    except OSError:
        return {}
    table = {}
    for name in names:
        if name.isdigit() and (row := _stat(name)) is not None:
            table[int(name)] = row
    return table


def descendants(pid: int, table: dict | None = None) -> list[int]:
    table = _table() if table is None else table
    children: dict[int, list[int]] = {}
    for child, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def find_kernel(root: int, sandboxed: bool) -> int | None:
    """The kernel's pid as this process sees it. In bwrap: root -> pid 1 of the sandbox -> kernel."""
    if not sandboxed:
        return root
    table = _table()
    inits = [p for p, row in table.items() if row[0] == root]
    kernels = [p for p, row in table.items() if inits and row[0] == inits[0]]
    return kernels[0] if len(inits) == 1 and len(kernels) == 1 else None


def strays(root: int, kernel: int) -> list[int]:
    """What the generated code left running: the kernel's descendants, orphans the sandbox's
    pid 1 adopted, and (plain child) orphans still in the kernel's process group."""
    table = _table()
    keep = {root, kernel}
    if root != kernel:
        keep.update(p for p, row in table.items() if row[0] == root)  # bwrap's pid 1
    found = set(descendants(root, table)) | {p for p, row in table.items() if row[1] == kernel}
    return sorted(p for p in found - keep if table.get(p, (0, 0, "Z"))[2] not in "ZX")  # not the dead


def kill_strays(root: int, kernel: int, rounds: int = 100) -> int:
    """SIGKILL them all; how many. A fork bomb makes new ones as fast as they die, so
    first SIGSTOP until no stray is left running (a stopped process cannot fork)."""
    stopped: set[int] = set()
    for _ in range(rounds):
        running = [pid for pid in strays(root, kernel) if pid not in stopped]
        if not running:
            break
        stopped.update(pid for pid in running if _signal(pid, signal.SIGSTOP))
    return sum(_signal(pid, signal.SIGKILL) for pid in strays(root, kernel))


def kill_all(proc: subprocess.Popen, pgid: int | None, kernel: int | None) -> None:
    """SIGKILL what the code left, then the process group we started; wait for it briefly."""
    if kernel and proc.poll() is None:
        kill_strays(proc.pid, kernel)
    try:
        if proc.poll() is None:
            if pgid and pgid != os.getpgid(0):
                os.killpg(pgid, signal.SIGKILL)
            else:
                proc.kill()
        proc.wait(timeout=2)
    except (OSError, subprocess.TimeoutExpired):
        pass


def _signal(pid: int, sig: int) -> bool:
    # A pidfd pins the process, so a pid reused between the scan and the signal is never hit.
    try:
        fd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        return False
    try:
        signal.pidfd_send_signal(fd, sig)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


class Vitals:
    """A kernel just after its warm-up, to tell later when an attempt left it spoiled."""

    def __init__(self, pid: int | None, cpu_limit: int):
        self.pid, self.cpu_limit = pid, cpu_limit
        self.threads = (threads(pid) or 0) if pid else 0
        used = cpu_seconds(pid) if pid and cpu_limit > 0 else None
        self.cpu_deadline = None if used is None else used + cpu_limit

    def cpu_running_out(self) -> bool:
        """Less than half the CPU budget left: better to start afresh now than mid-attempt."""
        used = cpu_seconds(self.pid) if self.pid and self.cpu_deadline is not None else None
        return used is not None and self.cpu_deadline - used < self.cpu_limit / 2

    def threads_left_over(self, slack: int) -> bool:
        return bool(self.pid) and (threads(self.pid) or 0) > self.threads + slack


def threads(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


_SIGNAL_HINTS = {
    signal.SIGXCPU: "the CPU time limit",
    signal.SIGXFSZ: "the file size limit",
    signal.SIGKILL: "killed outright: out of memory, or past the CPU time limit",
}


def death_detail(code: int | None, sandboxed: bool, cpu_limit: int = 0) -> str:
    """Words for a kernel's exit status; bwrap reports a signal N as exit code 128 + N."""
    if code is None:
        return ""
    number = -code if code < 0 else (code - 128 if sandboxed and 128 < code < 160 else 0)
    if not number:
        return f"exit code {code}"
    try:
        sig = signal.Signals(number)
    except ValueError:
        return f"killed by signal {number}"
    hint = _SIGNAL_HINTS.get(sig)
    if sig == signal.SIGXCPU and cpu_limit:
        hint = f"{hint} ({cpu_limit} s)"
    return f"killed by {sig.name}" + (f", {hint}" if hint else "")
