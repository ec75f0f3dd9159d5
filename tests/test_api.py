"""generate_plot: the loop without IPython, on the real child kernel."""

import sys
import warnings

import pandas as pd
from helpers import GOOD_BAR, fingerprint, key_error, sales_frame, write_replies

from viscoder_jupyter import generate_plot


def test_a_dataframe_is_known_as_df_and_the_result_has_everything(tmp_path):
    df = sales_frame()
    before = fingerprint(df)
    replay = write_replies(tmp_path / "r.jsonl", key_error("df"), GOOD_BAR)
    result = generate_plot(df, "revenue by region", backend="replay", replay=replay)
    assert result.ok and "plt.bar" in result.code
    assert len(result.images) == 1 and result.images[0][:4] == b"\x89PNG"
    first, second = result.attempts
    assert first.error.ename == "KeyError" and "plt.bar(df['Region']" in first.code
    assert second.error is None and second.images == result.images
    assert second.execute_seconds > 0 and second.seconds >= second.execute_seconds
    assert fingerprint(df) == before


def test_several_frames_each_under_its_own_name(tmp_path):
    costs = pd.DataFrame({"region": ["North", "South"], "cost": [3.0, 2.0]})
    reply = (
        "```python\nimport matplotlib.pyplot as plt\n"
        "merged = sales.groupby('region', as_index=False)['revenue'].sum().merge(costs, on='region')\n"
        "plt.bar(merged['region'], merged['revenue'] - merged['cost'])\nplt.show()\n```"
    )
    result = generate_plot(
        {"sales": sales_frame(), "costs": costs},
        "profit by region",
        backend="replay",
        replay=write_replies(tmp_path / "r.jsonl", reply),
    )
    assert result.ok, result.error


def test_failure_keeps_every_attempt_and_no_exception(tmp_path):
    replay = write_replies(tmp_path / "r.jsonl", key_error("df"), key_error("df"))
    result = generate_plot(sales_frame(), "x", backend="replay", replay=replay, retries=1)
    assert not result.ok and len(result.attempts) == 2 and result.images == []
    assert "KeyError" in result.error.traceback and "\x1b[" not in result.error.traceback


FLAGGED = (
    "```python\nimport matplotlib.pyplot as plt\ndf.to_csv('backup.csv')\n"
    "plt.bar(df['region'], df['revenue'])\nplt.show()\n```"
)


def calls_warned(times: int, **options) -> tuple[list, list[warnings.WarningMessage]]:
    """`generate_plot` called `times` times from one line, under Python's default warning filter
    (which says a `warnings.warn` once per line of code): the results and what was warned."""
    results = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        for _ in range(times):
            results.append(generate_plot(sales_frame(), "revenue by region", **options))
    return results, [w for w in caught if str(w.message).startswith("VisCoder:")]


def test_flagged_code_is_on_the_result_and_warned_at_every_call(tmp_path):
    replay = write_replies(tmp_path / "r.jsonl", FLAGGED, FLAGGED)
    results, caught = calls_warned(2, backend="replay", replay=replay, retries=0)
    for result in results:
        assert result.ok and [f.text for f in result.findings] == ["df.to_csv('backup.csv')"]
    flagged = [w for w in caught if "review flagged" in str(w.message)]
    assert len(flagged) == 2  # each call, not once per line
    assert all(w.filename == __file__ and issubclass(w.category, UserWarning) for w in flagged)
    assert "line 2: df.to_csv('backup.csv')" in str(flagged[0].message)


def test_an_unsandboxed_run_is_on_the_result_and_warned_at_every_call(tmp_path, monkeypatch):
    monkeypatch.delenv("VISCODER_REQUIRE_SANDBOX", raising=False)
    replay = write_replies(tmp_path / "r.jsonl", GOOD_BAR, GOOD_BAR)
    results, caught = calls_warned(2, backend="replay", replay=replay, sandbox="off")
    assert [r.sandboxed for r in results] == [False, False]
    assert [w.filename for w in caught if "without the sandbox" in str(w.message)] == [__file__, __file__]


def test_a_sandboxed_run_says_so_and_warns_nothing(tmp_path, sandbox_works):
    replay = write_replies(tmp_path / "r.jsonl", GOOD_BAR)
    (result,), caught = calls_warned(1, backend="replay", replay=replay)
    assert result.sandboxed is True and result.findings == [] and caught == []


def test_a_warning_is_said_at_every_call_not_once_per_line():
    """Python's default filter says a `warnings.warn` once per line of code (a loop over
    generate_plot is one line) unless something resets the filters in between; what
    generate_plot warns reaches every call, and the user's own filters still apply."""
    from viscoder_jupyter.frontends.api import warn_every_time

    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        for _ in range(3):
            warn_every_time("the code ran without the sandbox", sys._getframe())
    assert [w.filename for w in caught] == [__file__] * 3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore")
        warn_every_time("the code ran without the sandbox", sys._getframe())
    assert caught == []
