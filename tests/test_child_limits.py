"""The parent against a hostile child, through a real child kernel: floods of output stay
outside this process's memory, payloads of the wrong shape end the attempt with an error (and
what the attempt started is still killed), and the child is what the OOM killer takes first."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

from viscoder_jupyter import runtime
from viscoder_jupyter.child import limits, outputs
from viscoder_jupyter.child import processes as proc
from viscoder_jupyter.child.executor import ChildKernel
from viscoder_jupyter.core.errors import CodeRaised

PNG = b"\x89PNG\r\n\x1a\n"
DRAW = "\nimport matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()\n"
MB = 2**20


def wait(coro, timeout: float = 120):
    return runtime.submit(coro).result(timeout)


def run(kernel, code: str, timeout: float = 60):
    return wait(kernel.async_run(code, timeout), timeout + 60)


@pytest.fixture(scope="module")
def kernel():
    k = ChildKernel(fresh_per_request=False)  # one kernel for the module: each test is one attempt
    wait(k.async_load_frames({"df": pd.DataFrame({"a": [1, 2, 3]})}))
    yield k
    wait(k.async_shutdown())


def rss() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


class PeakGrowth:
    """This process's resident memory, sampled every 5 ms: how far above the start it peaked."""

    def __enter__(self):
        self.start = self.peak = rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.mb = (self.peak - self.start) / MB


def recovers(kernel) -> None:
    out = run(kernel, DRAW)
    assert out.error is None and out.images and out.images[0].startswith(PNG)


# ---- floods: bounded before decoding --------------------------------------------------------
FLOODS = {
    # 80 tracebacks of 2 MB each: 160 MB of error output, past the (lowered) 32 MB budget
    "showtraceback in a loop": (
        "ip = get_ipython()\nfor i in range(80):\n    try:\n        raise ValueError('x' * 2_000_000)\n"
        "    except ValueError:\n        ip.showtraceback()",
        "MB of output",
    ),
    "one 200 MB display message": (
        "from IPython.display import publish_display_data\npublish_display_data({'text/plain': 'x' * 200_000_000})",
        "a message over 64 MB",
    ),
    "update_display_data flood": (
        "from IPython.display import display\nh = display({'text/plain': 'a'}, raw=True, display_id=True)\n"
        "for i in range(10):\n    h.update({'text/plain': 'u' * 10_000_000}, raw=True)",
        "MB of output",
    ),
    "widget comm_open with huge state": (
        "from comm import create_comm\nfor i in range(10):\n    create_comm(target_name='jupyter.widget', data={'state': "
        "{'_model_module': '@jupyter-widgets/output', '_model_name': 'OutputModel', 'v': 'x' * 20_000_000}, "
        "'buffer_paths': []})",
        "MB of output",
    ),
}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", FLOODS)
def test_a_flood_ends_the_attempt_with_an_error_and_the_parent_stays_bounded(kernel, name, monkeypatch):
    monkeypatch.setattr(outputs, "ATTEMPT_BYTES_CAP", 32 * MB)
    code, said = FLOODS[name]
    with PeakGrowth() as growth:
        out = run(kernel, code + DRAW)
    print(f"{name}: parent peak RSS growth {growth.mb:.0f} MB")
    assert isinstance(out.error, CodeRaised) and out.error.ename == outputs.TOO_BIG_ENAME
    assert said in str(out.error)
    # One message of up to 20 MB may still be decoded while under the budget; without the bounds
    # the parent holds every message (widget state stored, all tracebacks kept), decoded.
    assert growth.mb < 100
    recovers(kernel)


@pytest.mark.timeout(180)
def test_error_text_is_capped_for_the_prompt_and_the_history(kernel):
    out = run(kernel, "def deep(n):\n    return deep(n + 1) if n < 50 else 1 / 0\nraise ValueError('v' * 500_000)")
    assert isinstance(out.error, CodeRaised) and out.error.ename == "ValueError"
    assert len(out.error.feedback_text()) <= outputs.ERROR_CAP + 200
    assert len(out.error.evalue) <= outputs.ERROR_VALUE_CAP + len(outputs.TRUNCATED)
    out = run(kernel, "def deep(n):\n    return deep(n + 1) if n < 400 else 1 / 0\ndeep(0)")
    text = out.error.feedback_text()
    assert len(text) <= outputs.ERROR_CAP + 200 and "traceback lines cut" in text
    assert text.rstrip().endswith("ZeroDivisionError: division by zero")  # the end is what is kept


@pytest.mark.timeout(180)
def test_a_reply_bigger_than_its_cap_is_an_error_not_a_hang(kernel, monkeypatch):
    # The execute_reply carries the exception's message too; past REPLY_CAP it is not decoded.
    out = run(kernel, "raise ValueError('w' * 3_000_000)")
    assert isinstance(out.error, CodeRaised) and out.error.ename == outputs.TOO_BIG_ENAME
    assert "reply over" in str(out.error)
    recovers(kernel)


# ---- payloads the parent cannot parse --------------------------------------------------------
SEND = "from IPython.display import publish_display_data\n"
PAYLOADS = {
    "figure facts as a list": SEND + f"publish_display_data({{{outputs.FACTS_MIME!r}: [1, 2]}})",
    "figure facts with a string for marks": SEND
    + f"publish_display_data({{{outputs.FACTS_MIME!r}: {{'figures': [{{'axes': [{{'marks': 'many'}}]}}]}}}})",
    "image/png that is not base64": SEND + "publish_display_data({'image/png': '!!not base64!!'})",
    "image/png that is not a PNG": SEND + "publish_display_data({'image/png': 'aGVsbG8='})",
    "plotly JSON that is not an object": SEND + f"publish_display_data({{{outputs.PLOTLY_MIME!r}: [1, 2, 3]}})",
    "display data that is not an object": (
        "k = get_ipython().kernel\nk.session.send(k.iopub_socket, 'display_data', "
        "{'data': [1], 'metadata': {}}, parent=k.get_parent())"
    ),
    "stream text that is not a string": (
        "k = get_ipython().kernel\nk.session.send(k.iopub_socket, 'stream', "
        "{'name': 'stdout', 'text': [1, 2]}, parent=k.get_parent())"
    ),
}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", PAYLOADS)
def test_a_payload_that_breaks_parsing_is_an_error_and_strays_are_killed(kernel, name):
    code = "import subprocess\nsubprocess.Popen(['sleep', '300'])\n" + PAYLOADS[name] + DRAW
    out = run(kernel, code)
    assert isinstance(out.error, CodeRaised) and out.error.ename == "UnreadableOutput", out.error
    assert "could not be read" in str(out.error)
    assert not proc.strays(kernel.pid, kernel.kernel_pid)  # the sleep the attempt left is gone
    recovers(kernel)


# ---- out of memory: the child goes first -----------------------------------------------------
@pytest.mark.timeout(120)
def test_the_child_is_what_the_oom_killer_takes_first(kernel):
    out = run(kernel, "print(open('/proc/self/oom_score_adj').read().strip())")
    assert out.stdout.strip() == str(limits.OOM_SCORE_ADJ)
    with open(f"/proc/{kernel.kernel_pid}/oom_score_adj") as f:
        assert f.read().strip() == "1000"
    for pid in [kernel.pid, *proc.descendants(kernel.pid)]:
        with open(f"/proc/{pid}/oom_score_adj") as f:
            assert f.read().strip() == "1000"  # bwrap and its init too: a fork inherits it
    # The kernel can lower its own score (here even sandboxed): it is set again after each attempt.
    run(kernel, "with open('/proc/self/oom_score_adj', 'w') as f:\n    f.write('0')")
    out = run(kernel, "print(open('/proc/self/oom_score_adj').read().strip())")
    assert out.stdout.strip() == "1000"


@pytest.mark.timeout(120)
def test_a_cgroup_limits_the_child_where_one_can_be_made():
    if limits.cgroup_parent() is None:
        pytest.skip("no cgroup v2 folder here delegates memory and pids (cgroup v1, or not ours to split)")
    k = ChildKernel(memory_limit_mb=1024)
    try:
        wait(k.async_start())
        with open(f"/proc/{k.kernel_pid}/cgroup") as f:
            assert "viscoder-kernel-" in f.read()
    finally:
        wait(k.async_shutdown())
    time.sleep(0.5)
