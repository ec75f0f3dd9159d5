"""Checks on code that ran, in the real child kernel: the figure is looked at, not just the exit status."""

import pandas as pd
from helpers import write_replies

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
MORE_CROWDED_EACH_RUN = fenced(
    "import matplotlib as mpl\nimport matplotlib.pyplot as plt\n"
    "mpl._test_runs_so_far = getattr(mpl, '_test_runs_so_far', 0) + 1\n"
    "n = 20 + 10 * mpl._test_runs_so_far\nfig, ax = plt.subplots(figsize=(4, 3))\n"
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
