"""What the generated code does to state, through real child kernels: the frames it was given
(a change fails the attempt, so the code never changes the user's data when they run it), and
what one attempt or request leaves behind for the next (nothing: each gets a fresh kernel)."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import fingerprint, sales_frame, write_replies

from viscoder_jupyter import runtime
from viscoder_jupyter.child.executor import ChildKernel
from viscoder_jupyter.core.errors import FramesChanged
from viscoder_jupyter.frontends.api import generate_plot

PLOT = "\nimport matplotlib.pyplot as plt\nplt.bar(df['city'], df['sales'])\nplt.show()"


def wait(coro, timeout: float = 120):
    return runtime.submit(coro).result(timeout)


def run(kernel, code: str, timeout: float = 30):
    return wait(kernel.async_run(code, timeout))


def frames():
    return {"df": pd.DataFrame({"city": ["Oslo", "Lima", "Pune"], "sales": [3, 5, 2]})}


@pytest.fixture(scope="module")
def kernel():
    k = ChildKernel()
    wait(k.async_load_frames(frames()))
    yield k
    wait(k.async_shutdown())


# ---- the frames it was given ---------------------------------------------------------------
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "change, said",
    [
        ("df['total'] = df['sales'] * 2", "columns added: total"),
        ("df.drop(columns='city', inplace=True)", "columns removed: city"),
        ("df.dropna(inplace=True); df.loc[0, 'sales'] = 99", "values changed in: sales"),
        ("df = df[df['sales'] > 2]", "3 -> 2 rows"),
        ("df.sort_values('sales', inplace=True)", "its index changed"),
        ("data = df\ndata['city'] = data['city'].str.upper()", "values changed in: city"),
        ("del df", "deleted"),
    ],
)
def test_code_that_changes_its_frame_fails_with_how(kernel, change, said):
    code = f"frames_copy = df.copy()\n{change}\n" + (
        "import matplotlib.pyplot as plt\nplt.bar(frames_copy['city'], frames_copy['sales'])\nplt.show()"
    )
    out = run(kernel, code)
    assert out.error is None and len(out.images) == 1  # it ran and drew: only the change is wrong
    assert isinstance(out.frames_changed, FramesChanged)
    assert said in str(out.frames_changed) and "data = df.copy()" in out.frames_changed.feedback_text()


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "code",
    [
        "data = df.copy()\ndata['total'] = data['sales'] * 2",
        "df = df.copy()",  # the name holds equal content: the user's frame reads the same
        "df.sort_values('sales')\ndf[['sales']].plot()",
    ],
)
def test_code_that_leaves_its_frame_as_it_was_passes(kernel, code):
    out = run(kernel, code + PLOT)
    assert out.error is None and out.frames_changed is None


@pytest.mark.timeout(120)
def test_the_prints_kept_in_the_parent_decide_not_the_childs_own(kernel):
    # The code rewrites the child's reference prints to match its change: the parent's copy,
    # taken when the frames were loaded, still says the frame changed.
    code = (
        "import sys\nchild = sys.modules['_viscoder_child']\ndf['x'] = 1\n"
        "child.state['prints'] = {'df': child.fingerprint(df)}"
    )
    out = run(kernel, code + PLOT)
    assert isinstance(out.frames_changed, FramesChanged)


@pytest.mark.timeout(240)
def test_the_loop_feeds_a_frame_change_back_and_the_users_frame_stays(tmp_path):
    sales = sales_frame()
    before = fingerprint(sales)
    mutates = (
        "```python\nimport matplotlib.pyplot as plt\ndf['double'] = df['revenue'] * 2\n"
        "plt.bar(df['region'], df['double'])\nplt.show()\n```"
    )
    copies = (
        "```python\nimport matplotlib.pyplot as plt\ndata = df.copy()\ndata['double'] = data['revenue'] * 2\n"
        "plt.bar(data['region'], data['double'])\nplt.show()\n```"
    )
    replay = write_replies(tmp_path / "r.jsonl", mutates, copies)
    result = generate_plot(sales, "revenue doubled by region", backend="replay", replay=replay)
    first, second = result.attempts
    assert isinstance(first.error, FramesChanged) and "columns added: double" in first.error.feedback_text()
    assert second.error is None and result.ok and "data = df.copy()" in result.code
    assert fingerprint(sales) == before


# ---- nothing carries from one request into the next -----------------------------------------
LEAVES_STATE = [
    # an IPython hook that would run in every later cell
    ("get_ipython().events.register('post_run_cell', lambda r: print('HOOKED'))", "print('clean')", "HOOKED"),
    # a patched library: every later plot's title rewritten
    ("import pandas as pd\npd.DataFrame.__len__ = lambda self: 42", "print(len(df))", "42"),
    # a module put in sys.modules in place of the real one
    (
        "import sys, types\nfake = types.ModuleType('seaborn')\nfake.__version__ = 'FAKE'\nsys.modules['seaborn'] = fake",
        "import seaborn\nprint(seaborn.__version__)",
        "FAKE",
    ),
]


async def _announce(kernel) -> None:
    kernel.next_attempt()  # what the loop does before the model writes each later attempt


def next_attempt(kernel) -> None:
    wait(_announce(kernel))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("leave, probe, trace", LEAVES_STATE, ids=["event hook", "patched pandas", "fake module"])
def test_an_attempt_starts_in_a_kernel_no_earlier_attempt_ran_in(kernel, leave, probe, trace):
    run(kernel, leave)
    used = kernel.kernel_pid
    next_attempt(kernel)
    out = run(kernel, probe + "\nprint(df.shape)")
    assert out.error is None and trace not in out.stdout
    assert out.stdout.strip().endswith("(3, 2)")  # the request's frames, loaded into the fresh kernel
    assert kernel.kernel_pid != used


@pytest.mark.timeout(240)
def test_options_a_failed_attempt_set_are_gone_in_the_next(tmp_path):
    """Attempt 1 sets pandas and matplotlib options, then fails; attempt 2 must meet the defaults,
    as the user's kernel would when they run the inserted cell (there, attempt 1 never ran)."""
    sets_options = (
        "```python\nimport pandas as pd\nimport matplotlib as mpl\npd.set_option('display.max_rows', 3)\n"
        "pd.options.plotting.backend = 'plotly'\nmpl.rcParams['lines.linewidth'] = 9\n"
        "raise ValueError('attempt 1 fails after setting options')\n```"
    )
    reads_options = (
        "```python\nimport pandas as pd\nimport matplotlib as mpl\nimport matplotlib.pyplot as plt\n"
        "print(pd.get_option('display.max_rows'), pd.options.plotting.backend, mpl.rcParams['lines.linewidth'])\n"
        "df.plot.bar(x='city', y='sales')\nplt.show()\n```"
    )
    replay = write_replies(tmp_path / "r.jsonl", sets_options, reads_options)
    result = generate_plot(frames()["df"], "sales by city", backend="replay", replay=replay, retries=1)
    first, second = result.attempts
    assert first.error is not None and "attempt 1 fails" in first.error.feedback_text()
    assert second.stdout.split() == ["60", "matplotlib", "1.5"]  # pandas' and matplotlib's defaults
    assert result.ok and len(second.images) == 1  # df.plot drew with matplotlib, as in the user's kernel


@pytest.mark.timeout(300)
@pytest.mark.parametrize("leave, probe, trace", LEAVES_STATE, ids=["event hook", "patched pandas", "fake module"])
def test_a_request_starts_in_a_kernel_no_attempt_ran_in(kernel, leave, probe, trace):
    run(kernel, leave)
    same_attempt = run(kernel, probe)
    assert trace in same_attempt.stdout  # runs not announced as attempts (`next_attempt`) share the kernel
    used = kernel.kernel_pid
    wait(kernel.async_load_frames(frames()))  # the next request
    out = run(kernel, probe)
    assert out.error is None and trace not in out.stdout
    assert kernel.kernel_pid != used


@pytest.mark.timeout(180)
def test_the_used_kernel_is_shut_down_and_the_frames_reach_the_fresh_one(kernel):
    run(kernel, "print('used')")
    used = kernel.kernel_pid
    wait(kernel.async_load_frames({"df": pd.DataFrame({"city": ["Rome"], "sales": [7]})}))
    out = run(kernel, "print(df['city'].tolist())")
    assert out.stdout.strip() == "['Rome']"
    wait(kernel._retiring_done(), timeout=60)
    with pytest.raises(OSError):
        open(f"/proc/{used}/stat").close()


@pytest.mark.timeout(180)
def test_without_fresh_kernels_state_does_carry_over():
    # What the fresh kernel prevents (and what `fresh_per_request=False`, the benchmark's
    # "before", still does): the hook survives into the next request.
    k = ChildKernel(fresh_per_request=False)
    try:
        wait(k.async_load_frames(frames()))
        run(k, LEAVES_STATE[0][0])
        wait(k.async_load_frames(frames()))
        assert "HOOKED" in run(k, "print('clean')").stdout
    finally:
        wait(k.async_shutdown())
