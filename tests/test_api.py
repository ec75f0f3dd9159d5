"""generate_plot: the loop without IPython, on the real child kernel."""

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
