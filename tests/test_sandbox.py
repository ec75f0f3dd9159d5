"""The sandbox: what the generated code can no longer reach, and the fallback without bwrap.

The kernel tests need a bwrap that works here (`apt-get install -y bubblewrap`; as root
it does); they skip elsewhere. The unit tests run everywhere.
"""

from __future__ import annotations

import ast
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from viscoder_jupyter import runtime
from viscoder_jupyter.child import folders, processes
from viscoder_jupyter.child import sandbox as sb
from viscoder_jupyter.child.executor import ChildKernel
from viscoder_jupyter.core.errors import ViscoderError

SNIPPETS = Path(__file__).parent / "snippets"
needs_bwrap = pytest.mark.skipif(sb.probe() is not None, reason=f"no sandbox here: {sb.probe()}")


def snippet(name: str) -> str:
    return (SNIPPETS / f"{name}.py").read_text()


def wait(coro, timeout: float = 90):
    return runtime.submit(coro).result(timeout)


# ---- units ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "HF_TOKEN",
        "OPENAI_API_KEY",
        "VISCODER_API_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
        "GITHUB_TOKEN",
        "DB_PASSWORD",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "SSH_AUTH_SOCK",
        "XAUTHORITY",
        "JUPYTER_TOKEN",
        "JPY_SESSION_NAME",
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "my_secret",
    ],
)
def test_secrets_and_the_desktop_are_scrubbed(name):
    assert name not in sb.scrub_env({name: "x", "PATH": "/usr/bin"})


def test_ordinary_variables_stay_and_urls_with_passwords_go():
    env = {
        "PATH": "/bin",
        "LANG": "C.UTF-8",
        "PYTHONPATH": "/src",
        "OMP_NUM_THREADS": "2",
        "MPLBACKEND": "agg",
        "DATABASE_URL": "postgres://me:hunter2@db/x",
        "PROXY": "http://proxy:3128",
    }
    kept = sb.scrub_env(env)
    assert "DATABASE_URL" not in kept
    assert kept == {k: v for k, v in env.items() if k != "DATABASE_URL"}


def test_bwrap_argv_isolates_and_binds_only_the_kernels_folders(tmp_path):
    private, rw, scratch = (str(tmp_path / name) for name in ("p", "rw", "s"))
    argv = sb.bwrap_argv(private, rw, scratch)
    joined = " ".join(argv)
    assert "--ro-bind / /" in joined and "--unshare-net" in argv and "--unshare-pid" in argv
    assert "--die-with-parent" in argv and "--new-session" in argv
    assert f"--ro-bind {private} {private}" in joined
    assert argv[argv.index("--chdir") + 1] == scratch
    assert argv.index("--tmpfs", argv.index("--proc")) < argv.index("--bind")  # /tmp, then binds
    writable = [argv[i + 1] for i, a in enumerate(argv) if a == "--bind"]
    assert writable == [rw, scratch]


def test_limits_per_mode():
    assert sb.rlimits(2048, sandboxed=True) == {
        "RLIMIT_FSIZE": sb.FILE_LIMIT_MB * 2**20,
        "RLIMIT_AS": 2048 * 2**20,
        "RLIMIT_NPROC": sb.PROCESS_LIMIT,
    }
    assert sb.rlimits(0, sandboxed=False) == {"RLIMIT_FSIZE": sb.FILE_LIMIT_MB * 2**20}  # no NPROC


def test_settings_choose_the_mode(monkeypatch):
    assert sb.choose("off") == (False, None)
    with pytest.raises(ViscoderError, match="Unknown sandbox setting"):
        sb.choose("maybe")
    monkeypatch.setattr(sb, "_probe_result", ["bubblewrap (bwrap) is not installed"])
    monkeypatch.setattr(sb, "_announced", False)
    monkeypatch.setattr(sb, "_pending_notice", None)
    with pytest.raises(sb.SandboxUnavailable, match="apt-get install -y bubblewrap"):
        sb.choose("required")
    sandboxed, notice = sb.choose("auto")
    assert not sandboxed and "not installed" in notice and "apt-get install -y bubblewrap" in notice
    assert sb.take_notice() == notice and sb.take_notice() is None  # shown once
    assert sb.choose("auto")[0] is False and sb.take_notice() is None


def test_required_without_bwrap_fails_to_start_with_the_install_hint(monkeypatch):
    monkeypatch.setattr(sb, "_probe_result", ["bubblewrap (bwrap) is not installed"])
    kernel = ChildKernel(sandbox="required")
    with pytest.raises(sb.SandboxUnavailable, match="apt-get install"):
        wait(kernel.async_start())
    assert not kernel.is_alive
    wait(kernel.async_shutdown())


def test_a_killed_sessions_folders_are_swept(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    outside = tmp_path / "not-ours"
    outside.mkdir()

    def session_folders(pid, started):
        made = [tmp_path / f"vc-{pid}", tmp_path / f"vc-rw-{pid}", tmp_path / f"viscoder-scratch-{pid}"]
        for folder in made:
            folder.mkdir()
        owner = {"pid": pid, "started": started, "folders": [str(made[1]), str(made[2]), str(outside)]}
        (made[0] / "owner.json").write_text(json.dumps(owner))
        return made

    killed = session_folders(dead.pid, "12345")
    running = session_folders(os.getpid(), folders._started(os.getpid()))
    assert folders.sweep() == 1
    assert not any(f.exists() for f in killed) and all(f.exists() for f in running) and outside.exists()


@pytest.mark.parametrize(
    "code, sandboxed, words",
    [
        (3, True, "exit code 3"),
        (-11, False, "killed by SIGSEGV"),
        (128 + 11, True, "killed by SIGSEGV"),
        (128 + 24, True, "SIGXCPU, the CPU time limit"),
        (-9, False, "out of memory"),
        (139, False, "exit code 139"),
    ],
)
def test_death_details(code, sandboxed, words):
    assert words in processes.death_detail(code, sandboxed)


# ---- a sandboxed kernel --------------------------------------------------------------------
@pytest.fixture(scope="module")
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture(scope="module")
def boxed(listener):
    """A sandboxed kernel started while the parent's environment holds a secret."""
    saved = dict(os.environ)
    os.environ.update(
        VISCODER_TEST_API_TOKEN="s3cret",
        VISCODER_TEST_PORT=str(listener),
        DISPLAY=":0",
        VISCODER_TEST_TARGET=str(Path(__file__).parent / f"out-{uuid.uuid4().hex}"),
    )
    kernel = ChildKernel(sandbox="required", memory_limit_mb=2048)
    try:
        wait(kernel.async_start())
        wait(kernel.async_load_frames({"df": pd.DataFrame({"city": ["Oslo", "Lima"], "sales": [3, 5]})}))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    yield kernel
    wait(kernel.async_shutdown())


def run(kernel, code, timeout=30):
    return wait(kernel.async_run(code, timeout))


@needs_bwrap
def test_writes_outside_scratch_fail_and_reach_nothing(boxed):
    out = run(boxed, snippet("writes_outside_scratch"))
    results = ast.literal_eval(out.stdout.strip())
    target = next(p for p in results if "out-" in p)
    assert results["/etc/viscoder-was-here"] == "OSError" and results[target] == "OSError"
    assert results["in-scratch.txt"] == "written"
    assert not os.path.exists(target) and not os.path.exists("/etc/viscoder-was-here")
    assert os.path.exists(os.path.join(boxed.scratch_dir, "in-scratch.txt"))
    home = "/tmp/viscoder-was-here"  # the sandbox's ~ is its private /tmp, not the host's
    assert results[home] == "written" and not os.path.exists(home)


@needs_bwrap
def test_the_users_home_is_hidden(boxed):
    marker = Path.home() / f".viscoder-test-{uuid.uuid4().hex}"
    marker.write_text("private")
    try:
        out = run(boxed, f"import os\nprint(os.path.exists({str(marker)!r}))")
        assert out.stdout.strip() == "False"
    finally:
        marker.unlink()


@needs_bwrap
def test_the_parents_files_stay_out_of_reach(boxed, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("original")
    private, rw = boxed._folders.private, boxed._folders.rw
    out = run(
        boxed,
        f"""import os
for attempt in (lambda: open(os.path.join({private!r}, "planted"), "w"), lambda: os.listdir({private!r})):
    try:
        attempt()
        print("allowed")
    except OSError as exc:
        print(type(exc).__name__)
os.symlink({str(victim)!r}, os.path.join({rw!r}, "frames.pkl.tmp"))
os.remove(os.path.join({rw!r}, "frames.pkl"))
os.symlink({str(victim)!r}, os.path.join({rw!r}, "frames.pkl"))""",
    )
    write, listing = out.stdout.split()
    assert write in ("OSError", "PermissionError")  # read-only, and closed to the uid as root
    assert listing == "PermissionError" or os.geteuid() != 0
    frames = {"df": pd.DataFrame({"city": ["Oslo", "Lima"], "sales": [3, 5]})}
    wait(boxed.async_load_frames(frames))  # writes the kernel's copy where the symlinks were
    assert victim.read_text() == "original"
    assert run(boxed, "print(df.shape)").stdout.strip() == "(2, 2)"


@needs_bwrap
def test_no_network_only_loopback(boxed, listener):
    out = run(boxed, snippet("opens_socket"))
    assert "refused: ConnectionRefusedError" in out.stdout  # the host's 127.0.0.1 is not its own
    assert "interfaces: ['lo']" in out.stdout
    with socket.create_connection(("127.0.0.1", listener), timeout=3):
        pass  # the same connection works from here


@needs_bwrap
def test_env_secret_and_display_are_gone(boxed):
    out = run(boxed, snippet("reads_env_secret") + "\nprint(os.environ.get('DISPLAY'))")
    assert out.error is None
    assert "<no token>" in out.stdout and "VISCODER_TEST_API_TOKEN" not in out.stdout
    assert out.stdout.strip().endswith("None")


@needs_bwrap
def test_runs_without_privileges(boxed):
    out = run(
        boxed,
        "import os\nst = open('/proc/self/status').read()\n"
        "print(os.getuid(), [l.split()[1] for l in st.splitlines() if l.startswith('CapEff')][0])",
    )
    uid, caps = out.stdout.split()
    assert int(caps, 16) == 0
    if os.geteuid() == 0:
        assert int(uid) != 0


@needs_bwrap
def test_interrupt_reaches_the_kernel_inside(boxed):
    code = (
        "import time\nopen('started', 'w').close()\n"
        "try:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    print('interrupted')"
    )
    running = runtime.submit(boxed.async_run(code, 120))
    started = os.path.join(boxed.scratch_dir, "started")
    deadline = time.monotonic() + 60
    while not os.path.exists(started) and time.monotonic() < deadline:
        time.sleep(0.1)
    wait(boxed.async_interrupt())  # bwrap passes no SIGINT on: this must go by control message
    out = running.result(60)
    assert out.error is None and out.stdout.strip() == "interrupted"


@needs_bwrap
def test_fallback_then_new_settings_restart_the_kernel_in_the_sandbox(monkeypatch):
    monkeypatch.setattr(sb, "_probe_result", ["bwrap refused to run here (test)"])
    monkeypatch.setattr(sb, "_announced", False)
    monkeypatch.setattr(sb, "_pending_notice", None)
    kernel = ChildKernel()  # sandbox="auto"
    hostname = "import socket\nprint(socket.gethostname())"
    try:
        plain = run(kernel, hostname)
        assert kernel.sandboxed is False and "without the sandbox" in kernel.sandbox_notice
        assert plain.stdout.strip() != "viscoder-sandbox"
        monkeypatch.undo()  # bwrap works again; the user asks for it
        pid = kernel.kernel_pid
        kernel.configure(sandbox="required", memory_limit_mb=2048, cpu_time_limit_s=60)
        boxed = run(kernel, hostname)
        assert boxed.stdout.strip() == "viscoder-sandbox" and kernel.sandboxed and kernel.kernel_pid != pid
    finally:
        wait(kernel.async_shutdown())


@needs_bwrap
def test_the_sandbox_dies_with_its_parent(boxed):
    kernel = ChildKernel(sandbox="required")
    wait(kernel.async_start())
    outer, inner = kernel.pid, kernel.kernel_pid
    assert outer != inner and processes.threads(inner)
    os.kill(outer, 9)  # as if the user's kernel were killed
    assert _gone(inner, seconds=30)
    wait(kernel.async_shutdown())


def _gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not processes.alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_running_without_the_sandbox_is_said_before_the_first_attempt_to_every_front_end(monkeypatch, tmp_path):
    """The fallback notice is a loop event (a Notice before the first attempt), so the magic, the
    sidebar and generate_plot all render it; it is said once a session."""
    from helpers import GOOD_BAR, write_replies

    from viscoder_jupyter.core.events import AttemptStarted, Notice
    from viscoder_jupyter.core.settings import VisCoder

    monkeypatch.setattr(sb, "_probe_result", ["bwrap refused to run here (test)"])
    monkeypatch.setattr(sb, "_announced", False)
    monkeypatch.setattr(sb, "_pending_notice", None)
    settings = VisCoder().with_overrides(
        backend="replay", replay=write_replies(tmp_path / "r.jsonl", GOOD_BAR, GOOD_BAR)
    )
    frames = {"sales": pd.DataFrame({"region": ["N", "S"], "revenue": [3, 5]})}
    kernel = ChildKernel()  # sandbox="auto"
    try:
        events: list = []
        result = runtime.run("bar chart of revenue by region", frames, settings, events.append, kernel=kernel)
        assert result.ok
        kinds = [type(e) for e in events]
        notices = [e.message for e in events if isinstance(e, Notice)]
        assert len(notices) == 1 and "without the sandbox" in notices[0] and "bwrap refused" in notices[0]
        assert kinds.index(Notice) < kinds.index(AttemptStarted)
        again: list = []
        runtime.run("bar chart of revenue by region", frames, settings, again.append, kernel=kernel)
        assert not [e for e in again if isinstance(e, Notice)]  # once a session
    finally:
        wait(kernel.async_shutdown())
