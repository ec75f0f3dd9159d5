"""Finding `viscoder serve`: the discovery file each server writes in the Jupyter runtime dir
(``viscoder-serve-<pid>.json``, mode 0600: it holds the token), and starting one on demand.

`tools/serve.py` writes the file; the openai backend's ``base_url = "auto"`` reads it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path

from ..core.errors import BackendUnavailable
from ..core.settings import setting_default

TOKEN_ENV = "VISCODER_SERVE_TOKEN"
PREFIX = "viscoder-serve-"


def runtime_dir() -> Path:
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir())


def write_discovery(info: dict) -> Path:
    """Announce a running server (this process) to every kernel of this user."""
    directory = runtime_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{PREFIX}{os.getpid()}.json"
    temp = path.with_suffix(".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info, f)
    os.replace(temp, path)  # readers never see half a file
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
        return httpx.get(url.rsplit("/v1", 1)[0] + "/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def find_servers(directory: Path | None = None) -> list[dict]:
    """Running servers announced in the runtime dir; files of dead ones are removed."""
    found = []
    for path in sorted((directory or runtime_dir()).glob(PREFIX + "*.json")):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not _alive(int(info.get("pid", -1))):
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        found.append(info)
    return found


def find_server(model_ref: str, directory: Path | None = None) -> dict | None:
    """The running server for this model (resolved path or hub id) that answers, if any."""
    for info in find_servers(directory):
        if info.get("model_ref") == model_ref and _healthy(info["url"]):
            return info
    return None


@contextlib.contextmanager
def _start_lock(directory: Path):
    """Kernels starting at once start one server: the second waits, then finds the first's."""
    directory.mkdir(parents=True, exist_ok=True)
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
    directory = runtime_dir()
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
        with open(log_path, "w") as log:
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
