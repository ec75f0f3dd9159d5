"""Finding `viscoder serve`: the discovery file each server writes in the Jupyter runtime dir
(``viscoder-serve-<pid>.json``, mode 0600: it holds the token), and starting one on demand.

`tools/serve.py` writes the file; the openai backend's ``base_url = "auto"`` reads it, and takes
the token from it for a loopback URL given without a key.

The file says where to send the user's prompts (their data) and which token to send, so a
file this user did not write is not believed: one owned by someone else, readable by others,
a symlink, malformed, or pointing anywhere but this machine's loopback is ignored.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from ..core.errors import BackendUnavailable
from ..core.settings import setting_default

TOKEN_ENV = "VISCODER_SERVE_TOKEN"
PREFIX = "viscoder-serve-"


def runtime_dir() -> Path:
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir())


#: A discovery file is a few hundred bytes; anything much larger is not one.
MAX_DISCOVERY_BYTES = 64 * 1024
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _private_dir(directory: Path) -> Path:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def _ours(st: os.stat_result) -> bool:
    """A regular file of this user that only this user can read or write."""
    if os.name != "posix":
        return stat.S_ISREG(st.st_mode)
    return stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) == 0o600


def write_discovery(info: dict) -> Path:
    """Announce a running server (this process) to every kernel of this user.

    Written to a fresh file (O_EXCL|O_NOFOLLOW: a planted file or symlink is never written
    through), then renamed over the announced name: readers never see half a file.
    """
    directory = _private_dir(runtime_dir())
    path = directory / f"{PREFIX}{os.getpid()}.json"
    with contextlib.suppress(FileNotFoundError):
        if os.name == "posix" and os.lstat(path).st_uid != os.getuid():  # ours (a stale one) is replaced
            raise BackendUnavailable(
                f"{path} exists and is not this user's file; remove it, then start `viscoder serve` again."
            )
    temp = directory / f".{PREFIX}{os.getpid()}-{secrets.token_hex(8)}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            if os.name == "posix":
                os.fchmod(f.fileno(), 0o600)  # whatever the umask
            json.dump(info, f)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return path


def _alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # os.kill(pid, 0) would terminate it on Windows; /health decides there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _healthy(url: str, timeout: float = 2.0) -> bool:
    from .openai import _httpx

    httpx = _httpx()
    try:
        # A proxy from the environment cannot reach our loopback.
        return httpx.get(url.rsplit("/v1", 1)[0] + "/health", timeout=timeout, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def is_loopback(host: str | None) -> bool:
    """'127.0.0.1', '::1', '[::1]', 'localhost': names that cannot leave this machine."""
    host = (host or "").strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_discovery(path: Path) -> dict | None:
    """The server a discovery file announces, or None where the file is not to be believed."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))  # a FIFO does not block
    except OSError:
        return None  # gone, or a symlink
    with os.fdopen(fd, "rb") as f:
        if not _ours(os.fstat(f.fileno())):  # the opened file itself: no swap after a check
            return None
        data = f.read(MAX_DISCOVERY_BYTES + 1)
    try:
        info = json.loads(data)
    except ValueError:
        return None
    if len(data) > MAX_DISCOVERY_BYTES or not isinstance(info, dict):
        return None
    pid, url, token = info.get("pid"), info.get("url"), info.get("token", "")
    if type(pid) is not int or pid <= 0 or not isinstance(url, str) or not isinstance(token, str):
        return None
    if not isinstance(info.get("model_ref", ""), str):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return None
    if parts.scheme != "http" or not is_loopback(parts.hostname):
        return None
    return info


def find_servers(directory: Path | None = None) -> list[dict]:
    """Running servers announced in the runtime dir; files of dead ones are removed."""
    found = []
    for path in sorted((directory or runtime_dir()).glob(PREFIX + "*.json")):
        info = read_discovery(path)
        if info is None:
            continue
        if not _alive(info["pid"]):
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        found.append(info)
    return found


def token_for(url: str, directory: Path | None = None) -> str:
    """The token of the running `viscoder serve` at `url` (a loopback URL), if one is announced."""
    for info in find_servers(directory):
        if info["url"].rstrip("/") == url.rstrip("/"):
            return info.get("token", "")
    return ""


def find_server(model_ref: str, directory: Path | None = None) -> dict | None:
    """The running server for this model (resolved path or hub id) that answers, if any."""
    for info in find_servers(directory):
        if info.get("model_ref") == model_ref and _healthy(info["url"]):
            return info
    return None


@contextlib.contextmanager
def _start_lock(directory: Path):
    """Kernels starting at once start one server: the second waits, then finds the first's."""
    _private_dir(directory)
    with open(directory / "viscoder-serve-start.lock", "a") as f:
        try:
            import fcntl
        except ImportError:  # Windows: no lock, at worst two servers
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def start_server(
    model: str,
    quantization: str = setting_default("quantization"),
    *,
    wait_s: float = 900.0,
    idle_exit_s: float = 3600.0,
) -> dict:
    """The running `viscoder serve` for `model`, started in the background if there is none.

    It outlives the kernel that started it (every notebook shares it) and exits after
    `idle_exit_s` without requests. Its output goes to a log file in the runtime dir.
    """
    from .hf_hub import resolve_model

    ref, _ = resolve_model(model)
    directory = _private_dir(runtime_dir())
    with _start_lock(directory):
        info = find_server(ref, directory)
        if info is not None:
            return info
        log_path = directory / f"{PREFIX}{uuid.uuid4().hex[:8]}.log"
        env = dict(os.environ, **{TOKEN_ENV: secrets.token_urlsafe(24)})
        command = [
            sys.executable,
            "-m",
            "viscoder_jupyter.tools.cli",
            "serve",
            "--model",
            model,
            "--quantization",
            quantization,
            "--idle-exit",
            str(idle_exit_s),
        ]
        # Only this user reads the log (it names the model, prompts' errors and tracebacks).
        with open(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600), "w") as log:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
                raise BackendUnavailable(
                    f"`viscoder serve` for {model!r} exited while starting (code {process.returncode}):"
                    f" {' | '.join(tail)} (log: {log_path})"
                )
            info = next((i for i in find_servers(directory) if i.get("pid") == process.pid), None)
            if info is not None:
                return info
            time.sleep(0.2)
        process.terminate()
        raise BackendUnavailable(f"`viscoder serve` for {model!r} did not start within {wait_s:g} s (log: {log_path}).")
