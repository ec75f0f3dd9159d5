"""`viscoder bench` through the real loop and child kernel, with recorded replies."""

import json
from pathlib import Path

import pytest
from helpers import write_replies

from viscoder_jupyter.tools import bench

DATA = Path(__file__).parent / "data" / "pandasplotbench-mini"  # tasks 5 and 42
TWIN_AXES = (
    "```python\nimport matplotlib.pyplot as plt\nimport pandas as pd\n"
    'df = pd.read_csv("data.csv")\nfig, ax = plt.subplots()\n'
    "ax.plot(df['Distance'], df['Density'], color='b')\nax2 = ax.twinx()\n"
    "ax2.plot(df['Distance'], df['Temperature'], color='r')\nplt.show()\n```"
)
THREE_PLOTS = (
    "```python\nimport matplotlib.pyplot as plt\nfig, axs = plt.subplots(1, 3)\n"
    "axs[0].bar(df['names'], df['values'])\naxs[1].scatter(df['names'], df['values'])\n"
    "axs[2].plot(df['names'], np.cumsum(df['values']))\nplt.show()\n```"
)
WRONG_COLUMN = "```python\nimport matplotlib.pyplot as plt\nplt.plot(df['distance'])\nplt.show()\n```"


def test_paper_prompt_follows_the_published_protocol():
    tasks = bench.load_tasks(DATA)
    instructs = json.loads((DATA / "instructs.json").read_text())
    import pandas as pd

    task = next(t for t in tasks if t.id == 5)
    system, user = bench.paper_messages(task, pd.read_csv(task.csv), instructs, "matplotlib", "full")
    assert system == {"role": "system", "content": instructs["system_prompt"]}
    text = user["content"]
    assert text.startswith(instructs["plot_instruct"] + "\n1. Plot Description: Construct a line plot")
    order = [
        text.index(s)
        for s in ("\n1. Plot Description", "\n2. Plot Style Description", "\n3. Setup.", "\n4. Data description.")
    ]
    assert order == sorted(order)
    assert "matplotlib with its subsidiary libraries" in text
    assert "DO NOT use seaborn for plotting. Only pure matplotlib." in text
    assert "DataFrame with 3 columns and 3 rows\nColumn names and types: Distance: int64" in text
    assert "\n\n\n" not in text


def test_paper_code_preparation():
    code = 'import pandas as pd\ndf = pd.read_csv("data.csv")\nplt.plot(np.arange(3))'
    # The harness comments the read out ('#') rather than dropping the line.
    assert bench.paper_prepare(code, ["df"]) == "import numpy as np\nimport pandas as pd\n#\nplt.plot(np.arange(3))"


def test_both_protocols_in_one_run_write_the_three_outputs(tmp_path):
    # Tasks alternate protocol by protocol: 5/paper, 5/ours, 42/paper, 42/ours.
    replay = write_replies(
        tmp_path / "replies.jsonl",
        WRONG_COLUMN,
        TWIN_AXES,  # 5 paper: fixed in round 1
        TWIN_AXES,  # 5 ours: first try
        THREE_PLOTS,  # 42 paper: np import added, works
        WRONG_COLUMN,
        WRONG_COLUMN,
    )  # 42 ours: fails, retries=1
    out = tmp_path / "out"
    assert (
        bench.main(
            [
                str(DATA),
                "--protocol",
                "paper,ours",
                "--backend",
                "replay",
                "--replay",
                replay,
                "--retries",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )

    paper = json.loads((out / "paper" / "summary.json").read_text())
    ours = json.loads((out / "ours" / "summary.json").read_text())
    assert paper["pass_rate_by_round"] == {"normal": 50.0, "round_1": 100.0}
    assert ours["pass_rate_by_round"] == {"normal": 50.0, "round_1": 50.0}
    assert ours["errors_by_name"] == {"KeyError": 2} and paper["first_errors_by_name"] == {"KeyError": 1}
    # Cost and like-for-like time: both solved only task 5; each attempt is one generation.
    assert paper["generations"] == 3 and ours["generations"] == 3
    assert paper["tasks_every_protocol_solved"] == ours["tasks_every_protocol_solved"] == 1
    paper_rows = [json.loads(line) for line in (out / "paper" / "results.jsonl").read_text().splitlines()]
    task5 = sum(r["generate_s"] + r["execute_s"] for r in paper_rows if r["task"] == 5)
    assert abs(paper["median_time_to_plot_shared_s"] - task5) < 0.01
    rows = [json.loads(line) for line in (out / "paper" / "results.jsonl").read_text().splitlines()]
    assert [(r["task"], r["attempt"], r["ok"], r["error"]) for r in rows] == [
        (5, 1, False, "KeyError"),
        (5, 2, True, None),
        (42, 1, True, None),
    ]
    assert all(r["execute_s"] > 0 and "code" in r for r in rows)
    assert sorted(p.name for p in (out / "paper" / "plots").iterdir()) == ["42.png", "5.png"]
    report = (out / "report.html").read_text()
    assert report.count("<img src='data:image/png;base64,") == 3  # self-contained: 2 paper + 1 ours
    assert "task 42: KeyError" in report
    # The recorded replies replay the run exactly.
    assert len((out / "ours" / "replies.jsonl").read_text().splitlines()) == 3


def test_identical_conversations_share_one_reply_across_protocols_and_runs(tmp_path):
    import asyncio

    from viscoder_jupyter.backends.base import Sampling
    from viscoder_jupyter.backends.replay import ReplayBackend

    ask = [{"role": "user", "content": "bar chart"}]
    cache = tmp_path / "cache.jsonl"
    shared = bench.SharedReplies(ReplayBackend(write_replies(tmp_path / "r.jsonl", "one", "two", "three")), cache)
    first = asyncio.run(shared.async_generate(ask))
    again = asyncio.run(shared.async_generate(ask))  # e.g. ours-no-data's first turn after ours'
    sampled = asyncio.run(shared.async_generate(ask, sampling=Sampling(seed=1)))
    assert (first.text, again.text, sampled.text) == ("one", "one", "two") and shared.hits == 1
    assert again.seconds == first.seconds is not None  # the time measured when it was generated
    # A later run reads the file: nothing is generated again.
    later = bench.SharedReplies(ReplayBackend(write_replies(tmp_path / "r2.jsonl", "other")), cache)
    assert asyncio.run(later.async_generate(ask)).text == "one" and later.inner.remaining == 1


def test_shared_replies_never_cross_models(tmp_path):
    import asyncio

    from viscoder_jupyter.backends.replay import ReplayBackend

    class OtherModel(ReplayBackend):  # a replay stands in for a second model: only its identity differs
        def identity(self):
            return "transformers:other-model:float32:cpu:max768"

    ask = [{"role": "user", "content": "bar chart"}]
    cache = tmp_path / "cache.jsonl"
    first = bench.SharedReplies(ReplayBackend(write_replies(tmp_path / "r.jsonl", "one")), cache)
    other = bench.SharedReplies(OtherModel(write_replies(tmp_path / "r2.jsonl", "two")), cache)
    assert asyncio.run(first.async_generate(ask)).text == "one"
    assert asyncio.run(other.async_generate(ask)).text == "two" and other.hits == 0


def test_the_transformers_identity_names_what_decides_its_replies(tiny_model_dir):
    from viscoder_jupyter.backends.transformers import TransformersBackend

    backend = TransformersBackend(str(tiny_model_dir), quantization="none", max_new_tokens=24, dtype="float32")
    assert backend.identity() == f"transformers:{tiny_model_dir.name}:float32:cpu:max24"


def test_ours_fails_an_empty_figure_and_the_paper_protocol_takes_it(tmp_path):
    # Task 42: the first reply filters every row away. `ours` sees the empty figure and gets
    # the fix; `paper` takes the empty figure as the answer, as the harness does: both "pass"
    # execution, only one drew something.
    empty = (
        "```python\nimport matplotlib.pyplot as plt\nsome = df[df['names'] == 'pears']\n"
        "plt.bar(some['names'], some['values'])\nplt.show()\n```"
    )
    good = "```python\nimport matplotlib.pyplot as plt\nplt.bar(df['names'], df['values'])\nplt.show()\n```"
    out = bench_run(tmp_path, "ours,paper", empty, good, empty)
    ours = json.loads((out / "ours" / "summary.json").read_text())
    paper = json.loads((out / "paper" / "summary.json").read_text())
    assert ours["pass_rate_by_round"]["normal"] == paper["pass_rate_by_round"]["normal"] == 100.0
    assert (ours["non_empty_figure_rate"], paper["non_empty_figure_rate"]) == (100.0, 0.0)
    assert [(r["error"], r["empty_figure"]) for r in rows_of(out, "ours")] == [("EmptyFigure", True), (None, False)]
    assert [(r["error"], r["empty_figure"]) for r in rows_of(out, "paper")] == [(None, True)]


def test_the_quality_checks_ablation_shows_what_they_change(tmp_path):
    # Unreadable tick labels: `ours` (checks off by default) takes the figure; `ours-checks` feeds
    # the collision back and gets the rotated labels, for one generation more.
    crowded = (
        "```python\nimport matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(4, 3))\n"
        "ax.bar([f'a long category name {i}' for i in range(30)], range(30))\nplt.show()\n```"
    )
    rotated = crowded.replace("plt.show()", "plt.xticks(rotation=90)\nfig.set_size_inches(12, 6)\nplt.show()")
    out = bench_run(tmp_path, "ours,ours-checks", crowded, crowded, rotated)
    assert [r["error"] for r in rows_of(out, "ours")] == [None]
    assert [r["error"] for r in rows_of(out, "ours-checks")] == ["CrowdedTicks", None]


def bench_run(tmp_path, protocols: str, *replies: str) -> Path:
    """`viscoder bench` on task 42 with `replies` served in order (protocols alternate per task)."""
    replay = write_replies(tmp_path / "replies.jsonl", *replies)
    out = tmp_path / "out"
    argv = [str(DATA), "--protocol", protocols, "--ids", "42", "--backend", "replay", "--replay", replay]
    assert bench.main([*argv, "--out", str(out)]) == 0
    return out


def rows_of(out: Path, protocol: str) -> list[dict]:
    return [json.loads(line) for line in (out / protocol / "results.jsonl").read_text().splitlines()]


def test_ablations_combine_so_one_addition_is_measured_under_another():
    from viscoder_jupyter.core.settings import VisCoder

    greedy_without_facts = bench.protocol_settings("ours-no-sampling-no-facts", VisCoder())
    assert greedy_without_facts.samples == 0 and greedy_without_facts.runtime_facts is False
    assert greedy_without_facts.data_feedback is True  # only what was named is off
    assert bench.variant_overrides("ours-no-sampling-no-such-thing") is None
    with pytest.raises(SystemExit):
        bench.main(["../shared/data/pandasplotbench", "--protocol", "ours-no-sampling-no-such-thing"])
