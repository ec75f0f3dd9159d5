"""Faults the generated code (or the model) can cause, each through a real child kernel.

Every one must end the attempt with an error the model can read, leave the child kernel
usable for the next attempt, and leave the caller's frames and names as they were.
Runs sandboxed where bwrap works, plain otherwise (the fork bomb needs the sandbox).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import GOOD_BAR, fingerprint, processes_gone
from IPython.core.error import UsageError

from viscoder_jupyter import backends, runtime
from viscoder_jupyter.backends import Backend
from viscoder_jupyter.child import outputs
from viscoder_jupyter.child import processes as proc
from viscoder_jupyter.child.executor import ChildKernel
from viscoder_jupyter.core.errors import ChildKernelDied, CodeRaised, ExecutionTimeout

SNIPPETS = Path(__file__).parent / "snippets"
PNG = b"\x89PNG\r\n\x1a\n"


def snippet(name: str) -> str:
    return (SNIPPETS / f"{name}.py").read_text()


def wait(coro, timeout: float = 120):
    return runtime.submit(coro).result(timeout)


def run(kernel, code: str, timeout: float = 30):
    return wait(kernel.async_run(code, timeout))


@pytest.fixture(scope="module")
def frames():
    return {"df": pd.DataFrame({"city": ["Oslo", "Lima", "Pune"], "sales": [3, 5, 2]})}


@pytest.fixture(scope="module")
def kernel(frames):
    saved = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = ":0"  # a desktop the child must not try to open windows on
    try:
        k = ChildKernel(memory_limit_mb=2048)
        wait(k.async_start())
        wait(k.async_load_frames(frames))
    finally:
        os.environ.pop("DISPLAY") if saved is None else os.environ.update(DISPLAY=saved)
    yield k
    wait(k.async_shutdown())


@pytest.fixture
def unchanged(frames):
    """The caller's frames, bit for bit, after the test's attempts."""
    before = {name: fingerprint(df) for name, df in frames.items()}
    yield
    assert {name: fingerprint(df) for name, df in frames.items()} == before


def recovers(kernel) -> None:
    after = run(kernel, snippet("draws_bar"))
    assert after.error is None and len(after.images) == 1 and after.images[0].startswith(PNG)
    assert kernel.is_alive


def no_strays(kernel, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not proc.strays(kernel.pid, kernel.kernel_pid):
            return True
        time.sleep(0.2)
    return False


# ---- the code misbehaves -------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_segfault_restarts_the_kernel(kernel, unchanged):
    pid = kernel.kernel_pid
    out = run(kernel, snippet("segfaults"))
    assert isinstance(out.error, ChildKernelDied) and "SIGSEGV" in str(out.error)
    assert kernel.kernel_pid != pid
    recovers(kernel)


@pytest.mark.timeout(120)
def test_memory_bomb_is_a_memory_error(kernel, unchanged):
    # The bomb, saying which 256 MiB block it asks for next.
    counted = snippet("memory_bomb").replace("    blocks.append(", "    print(len(blocks) + 1)\n    blocks.append(")
    assert counted != snippet("memory_bomb")
    out = run(kernel, counted)
    # The kernel's 2 GiB limit (not this machine running out) refused an allocation: a
    # MemoryError the model reads, at the line that allocates, the kernel still the same.
    assert isinstance(out.error, CodeRaised) and out.error.ename == "MemoryError"
    assert out.error.one_line().startswith("MemoryError")
    assert "blocks.append(bytearray(256 * 2**20))" in out.error.feedback_text()
    asked = [int(line) for line in out.stdout.split()]
    assert asked == list(range(1, len(asked) + 1)) and len(asked) <= 2048 // 256, out.stdout
    recovers(kernel)


@pytest.mark.timeout(180)
@pytest.mark.usefixtures("sandbox_works")  # only the sandbox limits processes; `make test` requires it
def test_fork_bomb_is_contained_and_cleaned_up(kernel, unchanged):
    out = run(kernel, snippet("fork_bomb"), timeout=5)
    # Timed out, or fork() refused; or the kernel itself could not start a thread and died.
    assert isinstance(out.error, (ExecutionTimeout, CodeRaised, ChildKernelDied))
    assert no_strays(kernel)
    recovers(kernel)


@pytest.mark.timeout(120)
def test_thread_bomb_is_stopped_and_the_threads_go(kernel, unchanged):
    out = run(kernel, snippet("thread_bomb"))
    assert isinstance(out.error, CodeRaised) and "thread" in out.error.evalue
    assert (proc.threads(kernel.kernel_pid) or 0) < 100  # replaced by a fresh kernel
    recovers(kernel)


@pytest.mark.timeout(120)
def test_output_flood_is_capped(kernel, unchanged):
    out = run(kernel, snippet("output_flood"), timeout=3)
    assert isinstance(out.error, ExecutionTimeout)
    assert out.truncated and out.stdout.endswith(outputs.TRUNCATED)
    assert out.stdout.startswith("flood flood") and len(out.stdout) <= outputs.STDOUT_CAP + len(outputs.TRUNCATED)
    recovers(kernel)


@pytest.mark.timeout(120)
def test_rich_output_is_capped_as_it_arrives(kernel, unchanged, monkeypatch):
    monkeypatch.setattr(outputs, "DISPLAY_CAP", 2 * 2**20)
    out = run(
        kernel,
        "import os\nfrom IPython.display import Image, display\n"
        "png = b'\\x89PNG\\r\\n\\x1a\\n' + os.urandom(200_000)\n"
        "for _ in range(40):\n    display(Image(data=png, format='png'))",
    )
    assert out.error is None and out.truncated
    assert 0 < len(out.images) < 40 and sum(map(len, out.images)) <= 2 * 2**20


@pytest.mark.timeout(120)
def test_stdin_is_refused_not_waited_on(kernel, unchanged):
    # Refused at once, in words the model can act on (a wait would end as a TimeoutError).
    out = run(kernel, snippet("calls_input"))
    assert isinstance(out.error, CodeRaised) and out.error.one_line() == (
        "StdinNotImplementedError: raw_input was called, but this frontend does not support input requests."
    )
    assert 'column = input("Which column? ")' in out.error.feedback_text()
    out = run(kernel, "import getpass\ngetpass.getpass()")
    assert isinstance(out.error, CodeRaised) and out.error.one_line() == (
        "StdinNotImplementedError: getpass was called, but this frontend does not support input requests."
    )
    out = run(kernel, "import sys\nprint(repr(sys.stdin.readline()))")  # the kernel's stdin is at its end
    assert out.error is None and out.stdout == "''\n"


@pytest.mark.timeout(120)
def test_gui_backend_fails_fast_instead_of_blocking(kernel, unchanged):
    out = run(kernel, snippet("shows_gui_window"), timeout=60)
    assert isinstance(out.error, CodeRaised) and out.error.ename == "ImportError"
    recovers(kernel)


@pytest.mark.timeout(120)
def test_a_million_points_still_give_a_png(kernel, unchanged):
    out = run(kernel, snippet("million_points"), timeout=90)
    assert out.error is None and len(out.images) == 1 and out.images[0].startswith(PNG)


@pytest.mark.timeout(180)
def test_cpu_limit_then_a_kernel_that_hangs_on_shutdown(frames, unchanged):
    kernel = ChildKernel(cpu_time_limit_s=2)
    wait(kernel.async_load_frames(frames))
    out = run(kernel, snippet("loops_forever"), timeout=120)  # the CPU limit comes first
    assert isinstance(out.error, ChildKernelDied) and "SIGXCPU" in str(out.error)
    recovers(kernel)

    out = run(kernel, snippet("hangs_on_shutdown"))
    assert out.error is None and out.stdout.strip() == "ready"
    processes = [kernel.pid, kernel.kernel_pid, *proc.descendants(kernel.pid)]
    wait(kernel.async_shutdown(), timeout=60)  # returns: the grace period ends in a kill
    assert not kernel.is_alive
    assert processes_gone(processes)


# ---- through the magic: the loop goes on, the user's namespace stays -----------------------
def _reply(code: str) -> str:
    return f"```python\n{code}\n```"


def user_state(ip):
    return sorted(k for k in ip.user_ns if not k.startswith("_")), fingerprint(ip.user_ns["sales"])


@pytest.mark.timeout(240)
def test_faulty_attempts_are_fed_back_until_one_works(shell):
    faults = ["loops_forever", "kills_itself", "output_flood", "calls_input", "shows_gui_window"]
    ip = shell(*[_reply(snippet(f)) for f in faults], GOOD_BAR, retries=len(faults), timeout=3)
    before = user_state(ip)
    ip.run_cell_magic("viscoder", "sales", "bar chart of revenue by region")
    result = ip.magics_manager.registry["VisCoderMagics"].last_result
    assert [a.error.ename if a.error else None for a in result.attempts] == [
        "TimeoutError",
        "KernelDied",
        "TimeoutError",
        "StdinNotImplementedError",
        "NameError",
        None,
    ]
    # The GUI backend never reached the child: the repairs dropped matplotlib.use("TkAgg"),
    # and the snippet's `df` (the frame here is `sales`) is what the model hears about.
    assert any("matplotlib backend" in note for note in result.attempts[4].repairs)
    assert result.ok and result.images[0].startswith(PNG)
    assert "plt.bar" in ip.rl_next_input
    assert user_state(ip) == before


class FailingBackend(Backend):
    """Streams the start of a reply, then the connection drops."""

    name = "failing"

    @classmethod
    def from_settings(cls, settings):
        return cls()

    async def async_generate(self, messages, on_text=None):
        if on_text:
            on_text("```python\nimport matplotlib.pyplot as plt\n")
        await asyncio.sleep(0)
        raise ConnectionError("the model server closed the connection")


@pytest.fixture
def failing(monkeypatch):
    monkeypatch.setitem(backends._BUILT_IN, "failing", f"{__name__}:FailingBackend")


@pytest.mark.timeout(120)
def test_backend_failing_mid_generation_inserts_nothing_and_keeps_the_kernel(shell, failing):
    ip = shell(GOOD_BAR)
    before = user_state(ip)
    with pytest.raises(Exception, match="closed the connection"):
        ip.run_cell_magic("viscoder", "sales --backend failing", "bar chart")
    assert not getattr(ip, "rl_next_input", None) and user_state(ip) == before
    ip.run_cell_magic("viscoder", "sales", "bar chart")  # the child kernel still serves
    assert ip.magics_manager.registry["VisCoderMagics"].last_result.ok


@pytest.mark.timeout(120)
def test_backend_failing_mid_generation_is_one_clear_message(shell, failing):
    ip = shell(GOOD_BAR)
    with pytest.raises(UsageError, match="ConnectionError: the model server closed the connection"):
        ip.run_cell_magic("viscoder", "sales --backend failing", "bar chart")
