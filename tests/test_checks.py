"""Checks on code that ran, in the real child kernel: the figure is looked at, not just the exit status."""

import pandas as pd
import pytest
from helpers import record_requests, write_replies

from viscoder_jupyter import generate_plot
from viscoder_jupyter.core.events import Status


def fenced(code: str) -> str:
    return f"```python\n{code}\n```"


FRAME = pd.DataFrame({"country": ["United States", "Canada", "Mexico"], "sales": [5.0, 3.0, 2.0]})
FILTERED_TO_NOTHING = fenced(
    "import matplotlib.pyplot as plt\nus = df[df['country'] == 'USA']\nplt.bar(us['country'], us['sales'])\nplt.show()"
)
GOOD = fenced("import matplotlib.pyplot as plt\nplt.bar(df['country'], df['sales'])\nplt.show()")
CROWDED = fenced(
    "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(4, 3))\n"
    "ax.bar([f'a long category name {i}' for i in range(30)], range(30))\nplt.show()"
)
ROTATED = fenced(
    "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(8, 3))\n"
    "ax.bar([f'cat {i}' for i in range(20)], range(20))\nplt.xticks(rotation=45, ha='right')\nplt.show()"
)
TWO_FIGURES = fenced(
    "import matplotlib.pyplot as plt\nimport seaborn as sns\nplt.figure(figsize=(6, 4))\n"
    "sns.catplot(data=df, x='country', y='sales', kind='bar')\nplt.show()"
)


def run(tmp_path, *replies, **config):
    return generate_plot(
        FRAME, "sales by country", backend="replay", replay=write_replies(tmp_path / "r.jsonl", *replies), **config
    )


def test_an_empty_figure_is_sent_back_and_the_fix_is_kept(tmp_path):
    result = run(tmp_path, FILTERED_TO_NOTHING, GOOD)
    first, second = result.attempts
    assert first.error.ename == "EmptyFigure" and first.images  # it drew axes, with nothing on them
    assert second.ok and result.final is second and result.code == second.code


def test_an_empty_figure_fails_the_attempt_with_the_quality_checks_off_too(tmp_path):
    result = run(tmp_path, FILTERED_TO_NOTHING, GOOD, checks=False)
    assert [a.error.ename if a.error else None for a in result.attempts] == ["EmptyFigure", None]
    assert result.final is result.attempts[1]


def test_the_quality_checks_are_off_by_default_and_the_crowded_figure_is_the_answer(tmp_path):
    result = run(tmp_path, CROWDED, ROTATED)
    assert len(result.attempts) == 1 and result.final.ok and result.images


def test_unreadable_tick_labels_are_reported_but_rotated_ones_pass(tmp_path):
    result = run(tmp_path, CROWDED, ROTATED, checks=True)
    first, second = result.attempts
    assert first.error.ename == "CrowdedTicks" and "x tick labels overlap" in str(first.error)
    assert second.ok


def test_a_stray_blank_figure_before_a_figure_level_seaborn_plot_is_caught(tmp_path):
    result = run(tmp_path, TWO_FIGURES, GOOD, checks=True)
    first = result.attempts[0]
    assert first.error.ename == "ManyFigures" and "1 of them blank" in str(first.error)
    assert result.attempts[1].ok


def test_a_check_failed_the_same_way_twice_ends_the_retries_with_the_figure_kept(tmp_path):
    result = run(tmp_path, CROWDED, CROWDED, ROTATED, retries=3, checks=True)
    assert [a.error.ename for a in result.attempts] == ["CrowdedTicks", "CrowdedTicks"]
    assert result.ok and result.images and result.final is result.attempts[1]


def test_a_request_for_several_plots_may_get_several_figures(tmp_path):
    two = fenced(
        "import matplotlib.pyplot as plt\nfor _ in range(2):\n    plt.figure()\n"
        "    plt.plot(df['sales'])\n    plt.show()"
    )
    asked = generate_plot(
        FRAME,
        "Create two plots of the sales",
        backend="replay",
        replay=write_replies(tmp_path / "two.jsonl", two),
        checks=True,
    )
    assert asked.ok and asked.final.ok and len(asked.images) == 2
    one = run(tmp_path, two, GOOD, checks=True)  # "sales by country": one figure was asked for
    assert one.attempts[0].error.ename == "ManyFigures" and one.attempts[1].ok


def test_a_figure_that_never_passes_a_check_is_still_the_answer_over_later_errors(tmp_path):
    broken = fenced("import matplotlib.pyplot as plt\nplt.bar(df['Country'], df['sales'])")
    result = run(tmp_path, CROWDED, broken, retries=1, checks=True)
    assert [a.error.ename for a in result.attempts] == ["CrowdedTicks", "KeyError"]
    assert result.ok and result.final is result.attempts[0] and result.images
    assert result.error.ename == "CrowdedTicks"  # the caveat stays visible


def test_when_greedy_retries_repeat_a_failure_the_next_round_samples_candidates(tmp_path):
    broken = fenced("import matplotlib.pyplot as plt\nplt.bar(df['Country'], df['sales'])")
    # The replay backend ignores the sampling itself; what is checked is the loop's use of it.
    result = run(tmp_path, broken, broken, broken, GOOD, retries=2, samples=3)
    assert [a.candidates for a in result.attempts] == [1, 1, 2]
    assert "df['Country']" not in str(result.attempts[2].reply)  # a new candidate, not a copy
    assert result.ok and result.final is result.attempts[2] and result.final.ok
    greedy_only = run(tmp_path, broken, broken, broken, GOOD, retries=2, samples=0)
    assert not greedy_only.ok and [a.candidates for a in greedy_only.attempts] == [1, 1, 1]


def test_a_readable_figure_failing_a_check_is_preferred_to_a_later_empty_one(tmp_path):
    result = run(tmp_path, CROWDED, FILTERED_TO_NOTHING, retries=1, checks=True)
    assert [a.error.ename for a in result.attempts] == ["CrowdedTicks", "EmptyFigure"]
    assert result.final is result.attempts[0]


# The same code draws more bars each time it runs (it counts its runs where the namespace reset
# does not reach): greedy decoding repeating itself, with figures failing the tick check a
# little differently each time, so the retries go on.
# The same code drawing a different figure each run: each attempt runs in a fresh kernel (nothing
# carries over), so the count comes from the clock, in tenths of a second (attempts are further apart).
MORE_CROWDED_EACH_RUN = fenced(
    "import pandas as pd\nimport matplotlib.pyplot as plt\n"
    "n = 30 + (pd.Timestamp.now().value // 10**8) % 1000\nfig, ax = plt.subplots(figsize=(4, 3))\n"
    "ax.bar([f'a long category name {i}' for i in range(n)], range(n))\nplt.show()"
)


def test_figures_that_only_fail_checks_do_not_set_off_sampling(tmp_path):
    events = []
    result = run(tmp_path, *[MORE_CROWDED_EACH_RUN] * 3, retries=2, samples=3, checks=True, on_event=events.append)
    assert [a.error.ename for a in result.attempts] == ["CrowdedTicks"] * 3
    assert len({a.error.one_line() for a in result.attempts}) == 3  # no early stop: each fails differently
    assert len({a.code for a in result.attempts}) == 1  # the same code: greedy is stuck
    statuses = [e.message for e in events if isinstance(e, Status)]
    assert any("preparing" in m for m in statuses)  # the loop's statuses are all here
    assert not [m for m in statuses if "sampled candidate" in m], statuses


# ---- figures that draw, but wrongly: on whatever the settings (checks.flawed_problem) ----------

REGIONS, MONTHS = ["North", "South", "East", "West"], ["Jan", "Feb", "Mar", "Apr", "May", "Jun"]
SALES = pd.DataFrame(  # 24 rows, region x month: several rows per region, as a user's table has
    {
        "region": [r for r in REGIONS for _ in MONTHS],
        "month": MONTHS * len(REGIONS),
        "month_no": list(range(1, 7)) * len(REGIONS),
        "revenue": [100.0 + 7 * i + (i % 5) * 13 for i in range(24)],
    }
)
PLT = "import matplotlib.pyplot as plt\n"
NOT_AGGREGATED = fenced(PLT + "plt.bar(sales['region'], sales['revenue'])\nplt.title('Total Revenue per Region')")
AGGREGATED = fenced(
    PLT + "totals = sales.groupby('region')['revenue'].sum()\nplt.bar(totals.index, totals.values)\nplt.show()"
)


def sales_run(tmp_path, request, *codes, **config):
    replies = write_replies(tmp_path / "sales.jsonl", *(fenced(PLT + c) if "```" not in c else c for c in codes))
    return generate_plot({"sales": SALES}, request, backend="replay", replay=replies, **config)


def problems(result) -> list:
    return [a.error.ename if a.error else None for a in result.attempts]


def test_bars_drawn_over_each_other_are_sent_back_with_the_columns_to_aggregate(tmp_path):
    events = []
    result = sales_run(
        tmp_path, "a bar chart of total revenue per region", NOT_AGGREGATED, AGGREGATED, on_event=events.append
    )
    first, second = result.attempts
    assert first.error.ename == "OverlappingBars"  # with the `checks` setting off (the default)
    assert first.error.one_line().startswith("OverlappingBars: 24 bars at 4 x positions overlap")
    assert "sales.groupby('region')['revenue'].sum()" in first.error.feedback_text()
    assert second.ok and result.final is second


def test_the_aggregated_bars_pass_at_once(tmp_path):
    result = sales_run(tmp_path, "a bar chart of total revenue per region", AGGREGATED)
    assert problems(result) == [None]


def test_overlapping_bars_no_attempt_fixed_are_named_in_the_last_line(tmp_path):
    from viscoder_jupyter.core.verified import verified_text
    from viscoder_jupyter.frontends.progress import summary

    result = sales_run(tmp_path, "a bar chart of total revenue per region", NOT_AGGREGATED, retries=0)
    assert result.ok and result.images and problems(result) == ["OverlappingBars"]  # the figure is still shown
    said = verified_text(result.final)
    assert said.startswith("ran and drew 1 figure with 24 vertical bars; but 24 bars at 4 x positions overlap")
    line = summary(result, {"sales": SALES})
    assert "24 bars at 4 x positions overlap" in line and "Note:" not in line  # said once, not twice


def test_stacked_grouped_and_aggregating_bars_and_histograms_are_not_flagged(tmp_path):
    stacked = (
        "import numpy as np\nbottom = np.zeros(6)\nfor region, part in sales.groupby('region'):\n"
        "    plt.bar(part['month'], part['revenue'], bottom=bottom, label=region)\n"
        "    bottom += part['revenue'].to_numpy()\nplt.legend()"
    )
    stacked_in_one_call = (  # one call, each bar on top of the one before: touching spans, no overlap
        "part = sales[sales['month'] == 'Jan']\nplt.bar(['Jan'] * 4, part['revenue'], "
        "bottom=part['revenue'].cumsum() - part['revenue'], color=['C0', 'C1', 'C2', 'C3'])"
    )
    grouped = (
        "import numpy as np\nx = np.arange(6)\nfor i, (region, part) in enumerate(sales.groupby('region')):\n"
        "    plt.bar(x + 0.2 * i, part['revenue'], width=0.2, label=region)\nplt.xticks(x + 0.3, sales['month'].unique())\n"
        "plt.legend()"
    )
    pandas_stacked = "sales.pivot(index='month', columns='region', values='revenue').plot.bar(stacked=True)"
    seaborn = "import seaborn as sns\nsns.barplot(data=sales, x='region', y='revenue', estimator='sum')"
    histogram = "plt.hist(sales['revenue'], bins=8)"
    histograms = "plt.hist([part['revenue'] for _, part in sales.groupby('region')], bins=5, stacked=True)"
    for code in (stacked, stacked_in_one_call, grouped, pandas_stacked, seaborn, histogram, histograms):
        result = sales_run(tmp_path, "revenue by region and month", code)
        assert problems(result) == [None], (code, result.attempts[0].error)


def test_a_line_over_unsorted_x_is_sent_back_and_the_sorted_one_passes(tmp_path):
    shuffled = "north = sales[sales['region'] == 'North'].sample(frac=1, random_state=1)\n"
    unsorted = shuffled + "plt.plot(north['month_no'], north['revenue'])"
    in_order = shuffled + "north = north.sort_values('month_no')\nplt.plot(north['month_no'], north['revenue'])"
    result = sales_run(tmp_path, "revenue of the North region over the months", unsorted, in_order)
    assert problems(result) == ["ZigzagLine", None]
    assert "not in x order" in str(result.attempts[0].error)
    assert "north.sort_values('month_no')" in result.attempts[0].error.feedback_text()


def test_several_groups_in_one_line_are_sent_back_with_one_line_per_group(tmp_path):
    joined = "plt.plot(sales['month_no'], sales['revenue'])"  # four regions, one after the other
    per_group = (
        "for region, part in sales.groupby('region'):\n    plt.plot(part['month_no'], part['revenue'], label=region)\n"
        "plt.legend()"
    )
    result = sales_run(tmp_path, "monthly revenue, one line per region", joined, per_group)
    assert problems(result) == ["ZigzagLine", None]
    feedback = result.attempts[0].error.feedback_text()
    assert "several groups" in feedback and "sales.groupby('region')" in feedback
    by_month = "ordered = sales.sort_values(['month_no', 'region'])\nplt.plot(ordered['month_no'], ordered['revenue'])"
    assert problems(sales_run(tmp_path, "monthly revenue", by_month, per_group)) == ["ZigzagLine", None]


def test_lines_drawn_on_purpose_are_not_flagged(tmp_path):
    time_series = (
        "import pandas as pd\ndays = pd.DataFrame({'date': pd.date_range('2024-01-01', periods=30), "
        "'value': range(30)})\nplt.plot(days['date'], days['value'])"
    )
    scatter = "plt.plot(sales['month_no'], sales['revenue'], 'o')"
    errorbar = (
        "means = sales.groupby('month_no')['revenue'].agg(['mean', 'std'])\n"
        "plt.errorbar(means.index, means['mean'], yerr=means['std'], capsize=3)"
    )
    seaborn = "import seaborn as sns\nsns.lineplot(data=sales, x='month_no', y='revenue')"
    spiral = "import numpy as np\nt = np.linspace(0, 6 * np.pi, 300)\nplt.plot(t * np.cos(t), t * np.sin(t))"
    trend = (  # a fitted straight line over unsorted x covers itself
        "import numpy as np\nx = sales['revenue']\nslope, cut = np.polyfit(x, x * 0.5, 1)\n"
        "plt.scatter(x, x * 0.5)\nplt.plot(x, slope * x + cut)"
    )
    depth = "import numpy as np\nz = np.arange(20)\nplt.plot(np.sin(z), z)"  # x back and forth, y in order
    for code in (time_series, scatter, errorbar, seaborn, spiral, trend, depth):
        result = sales_run(tmp_path, "revenue over time", code)
        assert problems(result) == [None], (code, result.attempts[0].error)


def test_a_legend_with_no_labelled_artists_is_sent_back(tmp_path):
    unlabelled = (
        "for region, part in sales.groupby('region'):\n    plt.plot(part['month_no'], part['revenue'])\nplt.legend()"
    )
    labelled = unlabelled.replace("part['revenue'])", "part['revenue'], label=region)")
    result = sales_run(tmp_path, "monthly revenue, one line per region", unlabelled, labelled)
    assert problems(result) == ["EmptyLegend", None]
    assert "label=" in result.attempts[0].error.feedback_text()


# ---- why the retries ended with tries left (issue 25, item 5) -------------------------------------

VERTICAL = AGGREGATED
HORIZONTAL = fenced(
    PLT + "totals = sales.groupby('region')['revenue'].sum()\nplt.barh(totals.index, totals.values)\nplt.show()"
)
RAISES = fenced(PLT + "plt.bar(sales['Region'], sales['revenue'])")


def notices(events) -> list[str]:
    from viscoder_jupyter.core.events import Notice

    return [e.message for e in events if isinstance(e, Notice) and "stopped" in e.message]


def test_a_figure_missing_the_request_ends_the_retries_and_says_why(tmp_path):
    events = []
    request = "horizontal bars of total revenue per region"
    result = sales_run(tmp_path, request, RAISES, VERTICAL, HORIZONTAL, on_event=events.append)
    assert problems(result) == ["KeyError", None]  # the request checks do not judge by default
    (said,) = notices(events)
    assert said.startswith("stopped after attempt 2 of 4: the code drew a figure")
    assert "it asks for horizontal bars, but the bars are vertical" in said
    assert "%config VisCoder.checks = True" in said


def test_with_the_checks_on_the_miss_is_fed_back_and_the_retries_go_on(tmp_path):
    events = []
    request = "horizontal bars of total revenue per region"
    result = sales_run(tmp_path, request, RAISES, VERTICAL, HORIZONTAL, checks=True, on_event=events.append)
    assert problems(result) == ["KeyError", "NotAsRequested", None]
    assert notices(events) == []


def test_the_same_miss_twice_ends_the_retries_and_says_why(tmp_path):
    events = []
    request = "horizontal bars of total revenue per region"
    result = sales_run(tmp_path, request, VERTICAL, VERTICAL, HORIZONTAL, checks=True, on_event=events.append)
    assert problems(result) == ["NotAsRequested", "NotAsRequested"]
    (said,) = notices(events)
    assert said.startswith("stopped after attempt 2 of 4: two figures in a row failed the same check")
    assert "horizontal bars" in said and result.ok and result.images


# ---- with the real engine: the offline GGUF in llama.cpp --------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_with_the_real_engine_overlapping_bars_are_fed_back_and_never_read_as_success(offline_gguf):
    """The issue's request on a 24-row table: whatever the 0.5B model writes, bars drawn over each
    other go back to it with the aggregation to do, and an answer still drawing them says so in its
    last line; a request miss not fed back (the checks off) ends the retries with a notice saying so."""
    from viscoder_jupyter import runtime
    from viscoder_jupyter.backends.llamacpp import LlamaCppBackend
    from viscoder_jupyter.backends.llamacpp_engine import import_llama_cpp
    from viscoder_jupyter.core.errors import BackendUnavailable
    from viscoder_jupyter.core.events import Notice
    from viscoder_jupyter.core.settings import VisCoder
    from viscoder_jupyter.frontends.progress import summary

    try:
        import_llama_cpp()
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    backend = LlamaCppBackend(str(offline_gguf), max_new_tokens=400)
    sent = record_requests(backend)  # the real engine, with what it was asked kept
    settings = VisCoder(backend="llamacpp", model=str(offline_gguf), retries=2, samples=0)
    events = []
    request = "a horizontal bar chart of the revenue of each region"
    job = runtime.plot_job(request, settings, frames={"sales": SALES})
    result = runtime.run_sync(runtime.async_run_job(job, events.append, backend=backend))
    names = problems(result)
    assert "OverlappingBars" in names, [a.code for a in result.attempts]  # the 0.5B model plots the rows
    for i, name in enumerate(names[:-1]):
        if name == "OverlappingBars":
            feedback = sent[i + 1][-1]["content"]
            assert "bars at 4 x positions overlap" in feedback or "bars at 4 y positions overlap" in feedback
            assert "sales.groupby('region')['revenue'].sum()" in feedback
    assert result.ok
    line = summary(result, {"sales": SALES})
    if result.final.error is not None and result.final.error.ename == "OverlappingBars":
        assert "positions overlap" in line  # not read as success
    stopped = [e.message for e in events if isinstance(e, Notice) and e.message.startswith("stopped after")]
    if len(result.attempts) < 3:  # ended with tries left: why is said
        assert result.final.ok and ("misses the request" in stopped[0] if stopped else "misses:" not in line)
