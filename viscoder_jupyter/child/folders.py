"""The child kernel's folders, and handing files into the ones its code can write to.

`private` is ours: the connection file, the master copy of the frames, the kernel's log.
The kernel never writes there (read-only in the sandbox, and closed to its uid as root).
`rw` (ipc sockets, its copy of the frames, caches) and `scratch` (its working directory)
are the kernel's, made fresh at every start: nothing an earlier kernel left there (a
symlink, say) meets the new one, or root handing them over.

A notebook killed outright runs no atexit: the next session sweeps what it left in /tmp.
The sweep trusts only what the kernel cannot write: our private folder (its name, owner and
`owner.json`); the kernel's folders are found by the private folder's id in their names, so
nothing the code writes (a decoy `owner.json` in `rw`, say) can point it at anything else.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
import tempfile
import threading

from .environment import matplotlib_cache

FRAMES = "frames.pkl"
_OWNER = "owner.json"
_PRIVATE = "viscoder-session-"  # + an id; the kernel's folders carry that id in their names
_PRIVATE_NAME = re.compile(rf"{_PRIVATE}(\w+)")
_swept = threading.Event()


class Folders:
    def __init__(self) -> None:
        self.private: str | None = None
        self.rw: str | None = None
        self.scratch: str | None = None

    def renew(self) -> None:
        """Before each kernel start: our folder once, the kernel's two afresh."""
        if not _swept.is_set():
            _swept.set()
            sweep()
        if not (self.private and os.path.isdir(self.private)):
            self.private = tempfile.mkdtemp(prefix=_PRIVATE)
            with open(os.path.join(self.private, _OWNER), "w") as f:
                json.dump({"pid": os.getpid(), "started": _started(os.getpid())}, f)
        for path in filter(None, (self.rw, self.scratch)):
            shutil.rmtree(path, ignore_errors=True)
        rw, scratch = _kernel_prefixes(_session_id(self.private))
        self.rw = tempfile.mkdtemp(prefix=rw)  # short: ipc paths max ~100 chars
        self.scratch = tempfile.mkdtemp(prefix=scratch)
        if self.has_frames:
            shutil.copyfile(os.path.join(self.private, FRAMES), self.kernel_frames)

    def remove(self) -> None:
        for path in filter(None, (self.private, self.rw, self.scratch)):
            shutil.rmtree(path, ignore_errors=True)
        self.private = self.rw = self.scratch = None

    @property
    def has_frames(self) -> bool:
        return bool(self.private) and os.path.exists(os.path.join(self.private, FRAMES))

    @property
    def kernel_frames(self) -> str:
        assert self.rw is not None
        return os.path.join(self.rw, FRAMES)

    def save_frames(self, data: bytes) -> bool:
        """Our master copy, then the kernel's; False when something the code left in its
        folder was in the way (then only a fresh start gets the frames to it)."""
        assert self.private is not None and self.rw is not None
        master = os.path.join(self.private, FRAMES)
        with open(master + ".tmp", "wb") as f:
            f.write(data)
        os.replace(master + ".tmp", master)
        try:
            hand_over(data, self.rw, FRAMES)
            return True
        except OSError:
            return False


def hand_over(data: bytes, folder: str, name: str) -> str:
    """Write `data` as folder/name for the kernel to read. The kernel writes in that folder
    too, so follow nothing it may have left there: a new file, renamed into place."""
    path = os.path.join(folder, name)
    temporary = f"{path}.{secrets.token_hex(8)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(temporary, path)
    return path


def seed_matplotlib_cache(rw_dir: str) -> None:
    """Copy matplotlib's font list in, or every sandboxed kernel rebuilds it (seconds)."""
    target = os.path.join(rw_dir, "mpl")
    os.makedirs(target, exist_ok=True)
    source = matplotlib_cache(os.environ)
    try:
        for name in os.listdir(source):
            if name.startswith("fontlist") and name.endswith(".json"):
                shutil.copyfile(os.path.join(source, name), os.path.join(target, name))
    except OSError:
        pass


def sweep() -> int:
    """Remove the folders of child kernels whose session is gone; how many sets."""
    top, removed = tempfile.gettempdir(), 0
    names = os.listdir(top)
    for name in names:
        private = os.path.join(top, name)
        try:
            if not _PRIVATE_NAME.fullmatch(name) or not _ours(private) or not _ours(os.path.join(private, _OWNER)):
                continue  # only what a session of ours made, and only our own files in it
            with open(os.path.join(private, _OWNER)) as f:
                owner = json.load(f)
            started = _started(owner["pid"])
            if started is not None and started == owner["started"]:
                continue  # still running
        except (OSError, ValueError, KeyError, TypeError):
            continue
        prefixes = _kernel_prefixes(_session_id(private))
        for folder in names:
            if folder.startswith(prefixes):
                shutil.rmtree(os.path.join(top, folder), ignore_errors=True)  # follows no link
        shutil.rmtree(private, ignore_errors=True)
        removed += 1
    return removed


def _session_id(private: str) -> str:
    return os.path.basename(private)[len(_PRIVATE) :]


def _kernel_prefixes(session: str) -> tuple[str, str]:
    """(rw, scratch) name prefixes of a session's kernel folders."""
    return f"vc-{session}-", f"viscoder-scratch-{session}-"


def _ours(path: str) -> bool:
    """Made by us: not a link, owned by this user, writable by nobody else."""
    st = os.lstat(path)
    return not stat.S_ISLNK(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _started(pid: int) -> str | None:
    """When a process started (its identity across pid reuse), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        pass
    try:  # no /proc: existence is all we can tell
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except (OSError, ValueError):
        pass  # someone else's process, but there
    return "alive"
