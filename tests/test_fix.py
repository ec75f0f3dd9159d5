"""Fixing existing code: the first turn, which cell `%viscoder_fix` picks, and the magic itself."""

import pytest
from helpers import GOOD_BAR, key_error, magics_of, sales_frame, write_replies
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from viscoder_jupyter import runtime
from viscoder_jupyter.backends.replay import ReplayBackend
from viscoder_jupyter.core.errors import RequestError
from viscoder_jupyter.core.fix import fix_messages
from viscoder_jupyter.core.frames import frames_for_code
from viscoder_jupyter.core.settings import VisCoder
from viscoder_jupyter.frontends.cell_history import CellHistory, is_plotting
from viscoder_jupyter.runtime import async_fix

BROKEN = "import matplotlib.pyplot as plt\nplt.bar(sales['Region'], sales['revenue'])\nplt.show()"
WORKS = "import matplotlib.pyplot as plt\nplt.bar(sales['region'], sales['revenue'])\nplt.show()"


# ------------------------------------------------------------------ the first turn
def test_the_users_code_is_the_earlier_reply_and_the_traceback_the_report():
    messages = fix_messages(
        BROKEN, "\x1b[31mKeyError\x1b[39m: 'Region'", "", {"sales": "DataFrame with 2 columns"}, "matplotlib"
    )
    system, request, code, report = messages
    assert system["role"] == "system" and "DataFrame with 2 columns" in request["content"]
    assert code == {"role": "assistant", "content": f"```python\n{BROKEN}\n```"}
    assert report["role"] == "user"
    assert report["content"].startswith("The above code failed with the following error:\nKeyError: 'Region'\n")
    assert "\x1b" not in report["content"] and report["content"].endswith("enclosed in ```python ... ```.")


def test_a_note_is_the_request_and_part_of_the_report():
    _, request, _, report = fix_messages(WORKS, "", "labels overlap", {"sales": "d"}, "matplotlib")
    assert "1. Plot Description: labels overlap" in request["content"]
    assert report["content"].startswith("The above code runs, but the plot is not right: labels overlap\n")
    _, _, _, both = fix_messages(BROKEN, "KeyError: 'Region'", "use a log scale", {"sales": "d"}, "matplotlib")
    assert "KeyError: 'Region'" in both["content"] and "use a log scale" in both["content"]


def test_nothing_to_fix_without_an_error_or_a_note():
    with pytest.raises(RequestError, match="Nothing to fix"):
        fix_messages(WORKS, "", "  ", {"sales": "d"}, "matplotlib")


def test_the_loop_starts_from_the_fix_turn(tmp_path):
    class Recording(ReplayBackend):
        def __init__(self, path):
            super().__init__(path)
            self.seen = []

        async def async_generate(self, messages, on_text=None):
            self.seen.append([dict(m) for m in messages])
            return await super().async_generate(messages, on_text)

    backend = Recording(write_replies(tmp_path / "r.jsonl", key_error(), GOOD_BAR))
    settings = VisCoder(backend="replay")
    result = runtime.run_sync(
        async_fix(BROKEN, "KeyError: 'Region'", "", {"sales": sales_frame()}, settings, backend=backend)
    )
    assert result.ok and len(result.attempts) == 2
    first, second = backend.seen
    assert len(first) == 4 and first[2]["content"].startswith("```python\nimport matplotlib")
    # The next round is the ordinary feedback turn on the model's own failed attempt.
    assert len(second) == 6 and "KeyError" in second[5]["content"] and "Region" in second[4]["content"]


# ------------------------------------------------------------------ frames and plotting cells
def test_frames_are_the_ones_the_code_names():
    other = sales_frame().rename(columns={"revenue": "cost"})
    assert list(frames_for_code({"sales": sales_frame(), "costs": other}, BROKEN)) == ["sales"]
    assert list(frames_for_code({"data": sales_frame()}, "plt.plot([1, 2])")) == ["data"]
    with pytest.raises(RequestError, match="names none of the DataFrames"):
        frames_for_code({"a": sales_frame(), "b": other}, "plt.plot([1, 2])")
    with pytest.raises(RequestError, match="No DataFrame in this notebook"):
        frames_for_code({"x": 1}, BROKEN)


@pytest.mark.parametrize(
    "source, plotting",
    [
        (WORKS, True),
        ("sales.plot(x='region')", True),
        ("import seaborn as sns\nsns.barplot(data=sales)", True),
        ("fig, ax = plt.subplots()\nax.bar([1], [2])", True),
        ("total = sales.revenue.sum()", False),
        ("print('plot twist')", False),
    ],
)
def test_what_counts_as_a_plotting_cell(source, plotting):
    assert is_plotting(source) is plotting


def test_the_history_keeps_the_last_failure_and_the_last_plot():
    ip = InteractiveShell()
    history = CellHistory(ip)
    ip.events.register("post_run_cell", history.post_run_cell)
    ip.user_ns["sales"] = sales_frame()
    ip.run_cell("import matplotlib\nmatplotlib.use('Agg')\n" + BROKEN)
    ip.run_cell("x = 1")
    assert history.last_failed.ename == "KeyError" and "Region" in history.last_failed.traceback
    assert "\x1b" not in history.last_failed.traceback
    assert history.target("") is history.last_failed
    ip.run_cell("import matplotlib\nmatplotlib.use('Agg')\n" + WORKS)
    assert history.target("bigger labels") is history.last_plotting and not history.last_plotting.failed
    ip.run_cell("%%viscoder\nnot recorded")
    assert history.last_plotting.source.endswith(WORKS)


def test_a_syntax_error_is_recorded_too():
    ip = InteractiveShell()
    history = CellHistory(ip)
    ip.events.register("post_run_cell", history.post_run_cell)
    ip.run_cell("plt.plot([1, 2]")
    assert history.last_failed.ename == "SyntaxError" and "plt.plot([1, 2]" in history.last_failed.traceback


# ------------------------------------------------------------------ %viscoder_fix
def test_viscoder_fix_fixes_the_last_failed_cell_and_inserts_the_code_below(shell, capsys):
    ip = shell(key_error(), GOOD_BAR)
    ip.run_cell("import matplotlib\nmatplotlib.use('Agg')")
    ip.run_cell(BROKEN, store_history=True)
    ip.run_line_magic("viscoder_fix", "")
    result = magics_of(ip).last_result
    assert result.ok and [a.ok for a in result.attempts] == [False, True]
    inserted = ip.rl_next_input
    assert inserted.startswith("# %viscoder_fix: make this run: import matplotlib.pyplot as plt\n")
    assert "df = sales" in inserted
    assert "fixing In [1] (KeyError: 'Region')" in capsys.readouterr().out


def test_viscoder_fix_with_a_note_takes_the_last_plotting_cell(shell):
    ip = shell(GOOD_BAR)
    ip.run_cell("import matplotlib\nmatplotlib.use('Agg')")
    ip.run_cell(WORKS)
    ip.run_line_magic("viscoder_fix", "sort the bars")
    assert magics_of(ip).last_result.ok
    assert ip.rl_next_input.startswith("# %viscoder_fix: sort the bars\n")


def test_viscoder_fix_with_nothing_to_fix_is_one_usage_error(shell):
    ip = shell(GOOD_BAR)
    with pytest.raises(UsageError, match="No cell has failed yet"):
        ip.run_line_magic("viscoder_fix", "")
    with pytest.raises(UsageError, match="No plotting cell has run yet"):
        ip.run_line_magic("viscoder_fix", "labels overlap")
    assert not getattr(ip, "rl_next_input", None)


def test_unloading_removes_the_hook(shell):
    ip = shell(GOOD_BAR)
    hook = magics_of(ip).history.post_run_cell
    assert hook in ip.events.callbacks["post_run_cell"]
    ip.extension_manager.unload_extension("viscoder_jupyter")
    assert hook not in ip.events.callbacks["post_run_cell"]
