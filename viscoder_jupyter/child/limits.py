"""Keeping the user's processes safe from the child's memory: the child is what the kernel's
OOM killer takes first (oom_score_adj 1000), its whole tree under a cgroup v2 memory and pids
limit where this process may make one, and the parent's sockets to it bounded.

Linux only; elsewhere each step is skipped. Best effort: a step the machine refuses is logged
at debug level and the kernel runs without it.
"""

from __future__ import annotations

import itertools
import logging
import os
from typing import Any

from . import outputs, processes
from .sandbox import PROCESS_LIMIT

log = logging.getLogger(__name__)
OOM_SCORE_ADJ = 1000  # the most: picked before any process of the user's
_names = itertools.count()


def protect_parent(root: int | None, memory_mb: int) -> str | None:
    """Mark the kernel's process tree (from `root`, the process we started) for the OOM killer,
    and move it into a cgroup of its own where possible; the cgroup's path, for `release`.

    The kernel can lower its own score again (seen here even in the sandbox, as another uid
    without capabilities), so `mark_for_oom` runs again after every attempt: this holds against
    code that runs out of memory by mistake, not against code that lowers it first on purpose."""
    if root is None:
        return None
    return _cgroup(mark_for_oom(root), memory_mb)


def mark_for_oom(root: int | None) -> list[int]:
    """oom_score_adj 1000 for `root` and its descendants (a fork inherits it); the tree."""
    tree = [root, *processes.descendants(root)] if root else []
    for pid in tree:
        try:
            with open(f"/proc/{pid}/oom_score_adj", "w") as f:
                f.write(str(OOM_SCORE_ADJ))
        except OSError:
            log.debug("cannot set oom_score_adj of %d", pid, exc_info=True)
    return tree


def release(group: str | None) -> None:
    """Remove the kernel's cgroup once its processes are gone."""
    if group:
        try:
            os.rmdir(group)
        except OSError:
            log.debug("cannot remove %s", group, exc_info=True)


def bound_sockets(context: Any) -> None:
    """Defaults for every socket `context` makes: no frame over the cap, few unread messages."""
    import zmq

    context.setsockopt(zmq.MAXMSGSIZE, outputs.MESSAGE_CAP)
    context.setsockopt(zmq.RCVHWM, 16)


def cgroup_parent() -> str | None:
    """This process's cgroup v2 folder, when it delegates memory and pids to groups made in it."""
    try:
        with open("/proc/self/cgroup") as f:
            own = next((line[3:].strip() for line in f if line.startswith("0::")), None)
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split() for line in f if " - cgroup2 " in line]
    except OSError:
        return None
    for fields in mounts:
        root, point = fields[3], fields[4]
        if own is None or not (own + "/").startswith(root.rstrip("/") + "/"):
            continue
        folder = os.path.join(point, os.path.relpath(own, root))
        try:
            with open(os.path.join(folder, "cgroup.subtree_control")) as f:
                delegated = f.read().split()
        except OSError:
            continue
        if {"memory", "pids"} <= set(delegated) and os.access(folder, os.W_OK):
            return folder
    return None


def _cgroup(tree: list[int], memory_mb: int) -> str | None:
    parent = cgroup_parent()
    if parent is None:
        return None
    group = os.path.join(parent, f"viscoder-kernel-{os.getpid()}-{next(_names)}")
    try:
        os.mkdir(group)
        settings = {"pids.max": str(PROCESS_LIMIT), "memory.oom.group": "1"}
        if memory_mb > 0:
            settings["memory.max"] = str(memory_mb * 2**20)
        for name, value in settings.items():
            with open(os.path.join(group, name), "w") as f:
                f.write(value)
        for pid in tree:
            try:
                with open(os.path.join(group, "cgroup.procs"), "w") as f:
                    f.write(str(pid))
            except ProcessLookupError:
                pass  # gone already
    except OSError:
        log.debug("no cgroup for the child kernel", exc_info=True)
        release(group)
        return None
    return group
