"""ChildKernel against real kernels: one snippet file per failure mode.

The kernel runs on an event loop in a background thread, as in the extension.
One warm kernel serves the well-behaved snippets; another takes the hangs, the
crash and the cancellation; shutdown tests start their own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from viscoder_jupyter.child.executor import ChildKernel, ExecutionOutcome
from viscoder_jupyter.core.errors import ChildKernelDied, CodeRaised, ExecutionTimeout

SNIPPETS = Path(__file__).parent / "snippets"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def snippet(name: str) -> str:
    return (SNIPPETS / f"{name}.py").read_text()


class LoopThread:
    """One event loop in a daemon thread; `run` waits for a coroutine from the test."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def submit(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro, timeout: float = 50):
        return self.submit(coro).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def make_frames() -> dict[str, pd.DataFrame]:
    return {
        "df": pd.DataFrame({"city": ["Oslo", "Lima", "Pune"], "sales": [3, 5, 2]}),
        "people": pd.DataFrame({"name": ["Ana", "Bo"], "age": [31, 42]}),
    }


def child_pids() -> set[int]:
    me, pids = os.getpid(), set()
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                    pids.add(int(entry))
        except (OSError, ValueError, IndexError):
            pass
    return pids


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module")
def runner():
    loop = LoopThread()
    yield loop
    loop.close()


def _kernel_with_frames(runner, frames):
    kernel = ChildKernel()
    runner.run(kernel.async_start())
    runner.run(kernel.async_load_frames(frames))
    return kernel


@pytest.fixture(scope="module")
def frames():
    return make_frames()


@pytest.fixture(scope="module")
def warm(runner, frames):
    kernel = _kernel_with_frames(runner, frames)
    yield kernel
    runner.run(kernel.async_shutdown())


@pytest.fixture(scope="module")
def fragile(runner, frames):
    """For snippets that hang or kill the kernel."""
    kernel = _kernel_with_frames(runner, frames)
    yield kernel
    runner.run(kernel.async_shutdown())


def run(runner, kernel, code: str, timeout: float = 20) -> ExecutionOutcome:
    return runner.run(kernel.async_run(code, timeout))


def noting_interrupt(code: str, marker: str) -> str:
    """`code`, leaving a file named `marker` in the kernel's working folder if interrupted."""
    body = "".join(f"    {line}\n" for line in code.splitlines())
    return f"try:\n{body}except KeyboardInterrupt:\n    open({marker!r}, 'w').close()\n    raise\n"


def wait_until(condition, seconds: float = 60) -> bool:
    """Whether `condition()` came true within `seconds` (a guard against a hang, not a measure)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.timeout(60)
def test_bar_chart_gives_one_png(runner, warm):
    out = run(runner, warm, snippet("draws_bar"))
    assert out.error is None
    assert len(out.images) == 1 and out.images[0].startswith(PNG_MAGIC)
    assert out.has_figure and out.plotly_json == []


@pytest.mark.timeout(60)
def test_stdout_is_captured(runner, warm):
    out = run(runner, warm, snippet("prints_and_draws"))
    assert out.error is None
    assert "rows: 3" in out.stdout
    assert len(out.images) == 1


@pytest.mark.timeout(60)
def test_stdout_is_capped(runner, warm):
    out = run(runner, warm, "print('x' * 50_000)")
    assert len(out.stdout) < 21_000 and out.stdout.endswith("[... truncated]")


@pytest.mark.timeout(60)
def test_key_error_is_code_raised_with_plain_traceback(runner, warm):
    out = run(runner, warm, snippet("raises"))
    assert isinstance(out.error, CodeRaised)
    assert out.error.ename == "KeyError"
    assert "revenue" in out.error.evalue
    assert "\x1b" not in out.error.traceback
    assert 'revenue = df["revenue"]' in out.error.traceback
    assert not out.has_figure


@pytest.mark.timeout(60)
def test_the_same_failure_reads_the_same_however_many_attempts_ran_before(runner, warm):
    code = "x = 1\ndf['no such column']"
    first, _, again = (run(runner, warm, c) for c in (code, snippet("draws_bar"), code))
    assert "Cell In[1], line 2" in first.error.feedback_text()
    assert first.error.feedback_text() == again.error.feedback_text()


@pytest.mark.timeout(60)
def test_draws_nothing_is_not_an_error(runner, warm):
    out = run(runner, warm, snippet("draws_nothing"))
    assert out.error is None and out.images == [] and not out.has_figure


@pytest.mark.timeout(60)
def test_input_raises_instead_of_hanging(runner, warm):
    out = run(runner, warm, snippet("calls_input"), timeout=20)
    assert isinstance(out.error, CodeRaised)
    assert out.error.ename == "StdinNotImplementedError"


@pytest.mark.timeout(60)
def test_mutations_do_not_reach_next_attempt_or_caller(runner, warm, frames):
    before = pd.util.hash_pandas_object(frames["df"]).sum()
    first = run(runner, warm, snippet("mutates_frame") + "\nprint(list(df.columns))")
    assert first.error is None and "extra" in first.stdout
    second = run(runner, warm, "print(list(df.columns), df.loc[0, 'city'])")
    assert second.stdout.strip() == "['city', 'sales'] Oslo"
    assert pd.util.hash_pandas_object(frames["df"]).sum() == before
    assert list(frames["df"].columns) == ["city", "sales"]


@pytest.mark.timeout(60)
def test_variables_and_rc_params_do_not_leak(runner, warm):
    first = run(runner, warm, snippet("leaves_variable") + "\nplt = None")
    assert first.error is None
    second = run(runner, warm, "print(plt.rcParams['lines.linewidth'])\nleftover")
    assert isinstance(second.error, CodeRaised) and second.error.ename == "NameError"
    assert "leftover" in second.error.evalue
    assert second.stdout.strip() == "1.5"  # plt restored, rcParams back to default


@pytest.mark.timeout(60)
def test_each_frame_under_its_own_name(runner, warm):
    out = run(runner, warm, "print(df.shape, people.shape, sorted(people.columns))")
    assert out.error is None
    assert out.stdout.strip() == "(3, 2) (2, 2) ['age', 'name']"


@pytest.mark.timeout(60)
def test_ipc_transport_and_private_dirs(runner, warm):
    info = warm.connection_info
    assert info["transport"] == "ipc"
    assert not os.path.exists(os.path.join(warm.scratch_dir, "frames.pkl"))
    out = run(runner, warm, "import os; print(os.getcwd()); os.chdir('/')")
    assert os.path.samefile(out.stdout.strip(), warm.scratch_dir)
    again = run(runner, warm, "import os; print(os.getcwd())")
    assert os.path.samefile(again.stdout.strip(), warm.scratch_dir)


@pytest.mark.timeout(60)
def test_plotly_show_is_captured_as_json(runner, warm):
    pytest.importorskip("plotly")
    out = run(runner, warm, snippet("draws_plotly"), timeout=40)
    assert out.error is None
    assert len(out.plotly_json) == 1 and "data" in out.plotly_json[0]
    assert out.has_figure


@pytest.mark.timeout(60)
def test_timeout_interrupts_and_kernel_recovers(runner, fragile):
    pid = fragile.pid
    out = run(runner, fragile, noting_interrupt(snippet("loops_forever"), "timeout-interrupted"), timeout=2)
    assert isinstance(out.error, ExecutionTimeout) and out.error.seconds == 2 and out.seconds >= 2
    assert os.path.exists(os.path.join(fragile.scratch_dir, "timeout-interrupted"))  # the loop saw Ctrl-C
    after = run(runner, fragile, "print(df.shape)")  # an uninterrupted loop would time this out
    assert after.error is None and after.stdout.strip() == "(3, 2)"
    assert fragile.pid == pid  # interrupted, not restarted


@pytest.mark.timeout(60)
def test_timeout_restarts_a_kernel_that_ignores_interrupt(runner, fragile):
    pid = fragile.pid
    out = run(runner, fragile, snippet("ignores_interrupt"), timeout=2)
    assert isinstance(out.error, ExecutionTimeout)
    assert fragile.pid != pid and pid_gone(pid)
    after = run(runner, fragile, "print(df.shape, people.shape)")
    assert after.error is None and after.stdout.strip() == "(3, 2) (2, 2)"


@pytest.mark.timeout(60)
def test_kernel_death_restarts_with_frames(runner, fragile):
    pid = fragile.pid
    out = run(runner, fragile, "print('before')\n" + snippet("kills_itself"))
    assert isinstance(out.error, ChildKernelDied) and "exit code 3" in str(out.error)
    assert fragile.pid != pid and fragile.is_alive
    after = run(runner, fragile, snippet("draws_bar"))
    assert after.error is None and len(after.images) == 1


def cancel_while_running(runner, kernel, code: str) -> None:
    """Start an attempt, cancel it a second later (the user's Cancel or Ctrl-C)."""
    future = runner.submit(kernel.async_run(code, 60))
    runner.run(asyncio.sleep(1.0))
    future.cancel()
    with pytest.raises(concurrent.futures.CancelledError):
        future.result(10)


@pytest.mark.timeout(60)
def test_a_cancelled_attempt_that_goes_on_running_does_not_block_the_next(runner, fragile):
    # What a lost interrupt leaves (one landing before the code starts, or inside the namespace
    # reset): the code still runs. The next request must not queue behind it.
    pid = fragile.pid
    cancel_while_running(runner, fragile, snippet("ignores_interrupt"))
    after = run(runner, fragile, "print(df.shape, people.shape)")
    assert after.error is None and after.stdout.strip() == "(3, 2) (2, 2)"
    assert fragile.pid != pid and pid_gone(pid)


@pytest.mark.timeout(90)
def test_cancel_interrupts_the_child(runner, fragile):
    pid = fragile.pid
    started = os.path.join(fragile.scratch_dir, "cancel-started")
    code = "import time\nopen('cancel-started', 'w').close()\ntime.sleep(600)"
    future = runner.submit(fragile.async_run(noting_interrupt(code, "cancel-interrupted"), 600))
    assert wait_until(lambda: os.path.exists(started)), "the code never started"
    future.cancel()
    with pytest.raises(concurrent.futures.CancelledError):
        future.result(10)
    after = run(runner, fragile, "print('ok')")  # an uninterrupted sleep would time this out
    assert after.error is None and after.stdout.strip() == "ok"
    assert os.path.exists(os.path.join(fragile.scratch_dir, "cancel-interrupted"))  # the sleep saw Ctrl-C
    assert fragile.pid == pid  # interrupted, not restarted


@pytest.mark.timeout(60)
def test_async_shutdown_leaves_no_process(runner):
    kernel = ChildKernel()

    async def start_twice():  # concurrent starts share one kernel
        await asyncio.gather(kernel.async_start(), kernel.async_start())

    before = child_pids()
    runner.run(start_twice())
    assert child_pids() - before == {kernel.pid}
    pid, dirs = kernel.pid, (kernel._private_dir, kernel.scratch_dir)
    assert kernel.is_alive
    runner.run(kernel.async_shutdown())
    assert pid_gone(pid) and not kernel.is_alive
    assert not any(os.path.exists(d) for d in dirs)
    runner.run(kernel.async_shutdown())  # idempotent
    kernel.shutdown_now()


@pytest.mark.timeout(60)
def test_shutdown_now_kills_without_the_loop(runner):
    kernel = ChildKernel()
    runner.run(kernel.async_start())
    pid = kernel.pid
    kernel.shutdown_now()  # from this thread, as atexit would
    assert pid_gone(pid)
    kernel.shutdown_now()
    runner.run(kernel.async_shutdown())
