"""Running without the sandbox is never silent: each front end says so, with the reason and the
fix, before the request's first attempt, at every request that runs without it."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from helpers import GOOD_BAR, sales_frame, write_replies
from jupyter_client.manager import start_new_kernel
from test_bench import DATA as BENCH_DATA
from test_comm import CommClient

from viscoder_jupyter import generate_plot, runtime
from viscoder_jupyter.child.executor import ChildKernel
from viscoder_jupyter.core.events import AttemptStarted, Notice
from viscoder_jupyter.core.settings import VisCoder
from viscoder_jupyter.tools import bench

WITHOUT = "without the sandbox"
FIX = "--security-opt seccomp=unconfined"  # broken_bwrap fails as Docker's defaults make it fail


def wait(coro, timeout: float = 90):
    return runtime.submit(coro).result(timeout)


@pytest.fixture
def fresh_kernel(monkeypatch):
    """The front ends' shared warm kernel, made afresh for the test and shut down after it."""
    monkeypatch.setattr(runtime, "_kernel", None)
    yield
    if runtime._kernel is not None:
        wait(runtime._kernel.async_shutdown())


def test_the_loop_says_it_before_the_first_attempt_of_every_request(broken_bwrap, tmp_path):
    settings = VisCoder().with_overrides(
        backend="replay", replay=write_replies(tmp_path / "r.jsonl", GOOD_BAR, GOOD_BAR)
    )
    frames = {"sales": pd.DataFrame({"region": ["N", "S"], "revenue": [3, 5]})}
    kernel = ChildKernel()  # sandbox="auto"
    try:
        for _ in range(2):  # the same warm kernel, still without the sandbox: said again
            events: list = []
            assert runtime.run("bar chart of revenue by region", frames, settings, events.append, kernel=kernel).ok
            kinds = [type(e) for e in events]
            (notice,) = [e.message for e in events if isinstance(e, Notice)]
            assert WITHOUT in notice and "Operation not permitted" in notice and FIX in notice
            assert kinds.index(Notice) < kinds.index(AttemptStarted)
    finally:
        wait(kernel.async_shutdown())


def test_nothing_is_said_when_it_runs_sandboxed_or_plain_on_purpose(sandbox_works, tmp_path):
    settings = VisCoder().with_overrides(
        backend="replay", replay=write_replies(tmp_path / "r.jsonl", GOOD_BAR, GOOD_BAR)
    )
    frames = {"sales": pd.DataFrame({"region": ["N", "S"], "revenue": [3, 5]})}
    for mode in ("auto", "off"):
        kernel = ChildKernel(sandbox=mode)
        try:
            events: list = []
            runtime.run("bar chart of revenue by region", frames, settings, events.append, kernel=kernel)
            assert not [e for e in events if isinstance(e, Notice)]
        finally:
            wait(kernel.async_shutdown())


def test_the_magic_says_it_before_the_first_attempt(broken_bwrap, fresh_kernel, shell, capsys):
    ip = shell(GOOD_BAR)
    ip.run_cell_magic("viscoder", "", "bar chart of revenue by region")
    out = capsys.readouterr().out
    assert WITHOUT in out and FIX in out
    assert out.index(WITHOUT) < out.index("attempt 1 of")


def test_generate_plot_warns_at_the_callers_line(broken_bwrap, fresh_kernel, tmp_path):
    replay = write_replies(tmp_path / "r.jsonl", GOOD_BAR)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = generate_plot(sales_frame(), "revenue by region", backend="replay", replay=replay)
    assert result.ok
    (warning,) = [w for w in caught if WITHOUT in str(w.message)]
    assert warning.category is UserWarning and FIX in str(warning.message)
    assert warning.filename == __file__  # the user's call, not our internals


def test_bench_prints_it_once_before_the_first_task(broken_bwrap, fresh_kernel, tmp_path, capsys):
    replay = write_replies(tmp_path / "r.jsonl", GOOD_BAR, GOOD_BAR)
    argv = [str(BENCH_DATA), "--backend", "replay", "--replay", replay, "--retries", "0", "--out", str(tmp_path)]
    assert bench.main(argv) == 0
    err = capsys.readouterr().err
    assert err.count(WITHOUT) == 1 and FIX in err  # two tasks, one note
    assert err.index(WITHOUT) < err.index("task ")


def test_the_sidebar_says_it_before_the_first_attempt(tmp_path):
    """A real kernel with the extension, its sidebar comm spoken over jupyter_client; its bwrap
    is broken the way broken_bwrap breaks it (before %load_ext starts the child kernel)."""
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        replay = write_replies(tmp_path / "replies.jsonl", GOOD_BAR)
        code = (
            "import os, viscoder_jupyter.child.sandbox as sb\n"
            "os.environ.pop('VISCODER_REQUIRE_SANDBOX', None)\n"  # falling back allowed, also under `make test`
            "sb._probe = lambda: 'bwrap refused to run here (bwrap: Creating new namespace failed: "
            "Operation not permitted)'\n"
            f"%load_ext viscoder_jupyter\n%config VisCoder.backend = 'replay'\n%config VisCoder.replay = {replay!r}\n"
            "import pandas as pd\nsales = pd.DataFrame({'region': ['N', 'S', 'W'], 'revenue': [1.0, 2.0, 3.0]})\n"
        )
        assert kc.execute_interactive(code, timeout=120, output_hook=lambda m: None)["content"]["status"] == "ok"
        client = CommClient(kc)
        assert client.open()["type"] == "ready"
        client.fix("run-1")
        events = client.until_final()
        kinds = [e["type"] for e in events]
        said = [i for i, e in enumerate(events) if e["type"] == "status" and WITHOUT in e["message"]]
        assert len(said) == 1 and FIX in events[said[0]]["message"]
        assert said[0] < kinds.index("attempt") and kinds[-1] == "done"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
