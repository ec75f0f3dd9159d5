"""Request checks: does the figure do what the request asks, where no model is needed to tell?"""

import pandas as pd
from helpers import sales_frame, write_replies

from viscoder_jupyter import runtime
from viscoder_jupyter.backends.replay import ReplayBackend
from viscoder_jupyter.core.events import Attempt
from viscoder_jupyter.core.request_checks import frame_columns, request_problem
from viscoder_jupyter.core.settings import VisCoder
from viscoder_jupyter.core.verified import verified_text

COLUMNS = {"df": ["date", "price", "category", "region", "revenue", "unit_price", "total"]}


def bar_axes(lengths, orientation="vertical", ticks=(), positions=None):
    return {
        "marks": len(lengths),
        "bars": len(lengths),
        "lines": 0,
        "points": 0,
        "orientation": orientation,
        "bar_sets": [
            {
                "orientation": orientation,
                "count": len(lengths),
                "positions": positions or list(range(len(lengths))),
                "lengths": list(lengths),
            }
        ],
        "ticks_x": [] if orientation == "horizontal" else list(ticks),
        "ticks_y": list(ticks) if orientation == "horizontal" else [],
        "legend": [],
    }


def line_axes(lines, ticks_x=(), legend=()):
    return {
        "marks": 30 * lines,
        "bars": 0,
        "lines": lines,
        "points": 0,
        "orientation": None,
        "bar_sets": [],
        "ticks_x": list(ticks_x),
        "ticks_y": [],
        "legend": list(legend),
    }


def figure(*axes):
    return [{"axes": list(axes), "texts": 0}]


def problem(request, code, facts=None, plotly=None, columns=COLUMNS):
    return request_problem(request, code, columns, facts, plotly or [])


# ---- horizontal ----------------------------------------------------------------------------------

BAR_CODE = "totals = df.groupby('region')['revenue'].sum()\nplt.bar(totals.index, totals.values)"
BARH_CODE = BAR_CODE.replace("plt.bar(", "plt.barh(")


def test_horizontal_bars_pass_and_vertical_ones_are_sent_back():
    asked = "horizontal bars of revenue by region"
    assert problem(asked, BARH_CODE, figure(bar_axes([3, 5, 2], "horizontal"))) is None
    found = problem(asked, BAR_CODE, figure(bar_axes([3, 5, 2], "vertical")))
    assert found.ename == "NotAsRequested"
    assert "asks for horizontal bars, but the bars are vertical" in str(found).splitlines()[0]
    assert "plt.barh(" in str(found)
    assert problem("make the bars horizontal", BAR_CODE, figure(bar_axes([3, 5, 2], "vertical"))) is not None


def test_horizontal_in_plotly_is_the_trace_orientation():
    asked = "a horizontal bar chart of revenue by region"
    code = "import plotly.express as px\npx.bar(df, x='revenue', y='region', orientation='h').show()"
    flat = [{"data": [{"type": "bar", "orientation": "h", "x": [1, 2], "y": ["a", "b"]}]}]
    upright = [{"data": [{"type": "bar", "x": ["a", "b"], "y": [1, 2]}]}]
    assert problem(asked, code, plotly=flat) is None
    found = problem(asked, code.replace(", orientation='h'", ""), plotly=upright)
    assert found is not None and "orientation='h'" in str(found)


def test_horizontal_that_is_not_about_bars_asks_nothing():
    upright = figure(bar_axes([3, 5, 2], "vertical"))
    assert problem("bar chart of revenue by region with a horizontal line at the mean", BAR_CODE, upright) is None
    assert (
        problem(
            "three plots displayed horizontally in one row: a bar chart, a scatter plot and a line "
            "plot of revenue by region",
            BAR_CODE,
            upright,
        )
        is None
    )
    assert (
        problem(
            "Create a horizontal row of three plots (bar chart, scatter plot, line plot) of revenue by region",
            BAR_CODE,
            upright,
        )
        is None
    )


# ---- sorted --------------------------------------------------------------------------------------


def test_sorted_bars_pass_in_either_direction_and_unsorted_ones_are_sent_back():
    code = BAR_CODE.replace(".sum()", ".sum().sort_values()")
    for asked in (
        "bar chart of revenue by region, sorted",
        "revenue by region in descending order",
        "rank the regions by revenue",
    ):
        assert problem(asked, code, figure(bar_axes([9, 7, 3, 1]))) is None, asked
        assert problem(asked, code, figure(bar_axes([1, 3, 7, 9], "horizontal"))) is None, asked
        found = problem(asked, BAR_CODE, figure(bar_axes([3, 9, 1, 7])))
        assert found is not None and "not in order (3, 9, 1, 7)" in str(found), asked
        assert "sort_values" in str(found)


def test_stacked_bars_are_sorted_by_their_totals():
    stacked = bar_axes([1, 5, 1])
    stacked["bar_sets"].append({"orientation": "vertical", "count": 3, "positions": [0, 1, 2], "lengths": [9, 1, 2]})
    assert problem("stacked bars of revenue by region, sorted", BAR_CODE, figure(stacked)) is None  # 10, 6, 3
    stacked["bar_sets"][1]["lengths"] = [1, 9, 2]  # 2, 14, 3
    assert problem("stacked bars of revenue by region, sorted", BAR_CODE, figure(stacked)) is not None


def test_sorted_alphabetically_looks_at_the_labels():
    unsorted_values = figure(bar_axes([3, 9, 1], ticks=["East", "North", "West"]))
    assert problem("revenue by region, sorted alphabetically", BAR_CODE, unsorted_values) is None
    assert problem("revenue by region, sorted", BAR_CODE, unsorted_values) is not None  # by value


def test_sorted_by_the_column_on_the_axis_looks_at_the_labels():
    frame = pd.DataFrame({"year": [2021, 2019, 2020], "revenue": [1.0, 9.0, 5.0]})
    asked = "bars of revenue per year, sorted by year"
    columns = frame_columns({"df": frame}, asked)
    assert columns["df"]["year"] == ["2021", "2019", "2020"]
    code = "s = df.sort_values('year')\nplt.bar(s['year'].astype(str), s['revenue'])"
    in_order = figure(bar_axes([9, 1, 5], ticks=["2019", "2020", "2021"]))
    assert problem(asked, code, in_order, columns=columns) is None
    shuffled = figure(bar_axes([1, 9, 5], ticks=["2021", "2019", "2020"]))
    assert problem(asked, code, shuffled, columns=columns) is not None
    # Sorted by the plotted values: labels in order (groupby's order) do not count.
    by_value = "bars of revenue per year, sorted by revenue"
    assert problem(by_value, code, in_order, columns=frame_columns({"df": frame}, by_value)) is not None


def test_sorted_in_plotly_by_values_or_category_order():
    asked = "bar chart of revenue by region sorted from highest to lowest"
    code = "import plotly.express as px\nfig = px.bar(df, x='region', y='revenue')"
    unsorted = {"data": [{"type": "bar", "x": ["a", "b", "c"], "y": [3, 9, 1]}], "layout": {}}
    assert problem(asked, code, plotly=[unsorted]) is not None
    ordered = {**unsorted, "layout": {"xaxis": {"categoryorder": "total descending"}}}
    assert problem(asked, code, plotly=[ordered]) is None
    assert problem(asked, code, plotly=[{"data": [{"type": "bar", "x": ["b", "a", "c"], "y": [9, 3, 1]}]}]) is None


def test_sorted_without_bars_asks_nothing():
    assert problem("price over date, sorted by date", "plt.plot(df['date'], df['price'])", figure(line_axes(1))) is None


# ---- columns the request names -------------------------------------------------------------------


def test_a_named_column_the_code_never_uses_is_sent_back():
    found = problem("line plot of price over date", "plt.plot(df['date'], df['revenue'])", figure(line_axes(1)))
    assert found is not None and "'price', which the code never uses" in str(found)
    assert "df['price']" in str(found)
    assert problem("line plot of price over date", "plt.plot(df.date, df['price'])", figure(line_axes(1))) is None


def test_column_names_match_whole_words_any_case_and_the_longest_name():
    facts = figure(line_axes(1))
    # "unit price" is the column unit_price, not price; "totals" is a plain word, not the column.
    assert problem("Unit Price over Date", "plt.plot(df['date'], df['unit_price'])", facts) is None
    assert problem("the totals of price over date", "plt.plot(df['date'], df['price'])", facts) is None
    assert problem("line of 'total' over date", "plt.plot(df['date'], df['price'])", facts) is not None  # quoted
    assert problem("priceless, undated rows", "plt.plot(df['revenue'])", facts) is None  # not whole words


def test_code_that_picks_columns_by_position_or_shows_their_names_is_not_faulted():
    assert problem("price over date", "df.set_index(df.columns[0])[df.columns[1]].plot()", figure(line_axes(1))) is None
    legend = figure(line_axes(2, legend=["price", "revenue"]))
    assert problem("price and revenue", "df[['price', 'revenue']].plot()", legend) is None
    assert problem("histograms of price and revenue", "df.hist(bins=20)", figure(bar_axes([1, 2]))) is None
    assert problem("histograms of price and revenue", "plt.hist(df['price'])", figure(bar_axes([1, 2]))) is not None


# ---- by X ----------------------------------------------------------------------------------------

RAW_DAILY = "import matplotlib.pyplot as plt\nplt.plot(df['date'], df['price'])\nplt.show()"
ASKED = "monthly average of price by category as lines"


def test_by_a_column_without_grouping_is_sent_back():
    found = problem(ASKED, RAW_DAILY, figure(line_axes(1)))
    assert found is not None
    first = str(found).splitlines()[0]
    assert "'category', which the code never uses" in first and "not split by 'category'" in first
    assert "hue='category'" in str(found)
    filtered = "sub = df[df['category'] == 'A']\nplt.plot(sub['date'], sub['price'])"
    found = problem(ASKED, filtered, figure(line_axes(1)))
    assert found is not None and "not split by 'category'" in str(found) and "never uses" not in str(found)


def test_grouping_or_an_encoding_on_the_column_passes():
    lines = figure(line_axes(3))
    for code in (
        "import seaborn as sns\nsns.lineplot(data=df, x='date', y='price', hue='category')",
        "m = df.groupby([pd.Grouper(key='date', freq='M'), 'category'])['price'].mean().unstack()\nm.plot()",
        "df.pivot_table(index='date', columns='category', values='price').plot()",
        "for cat in df['category'].unique():\n    sub = df[df['category'] == cat]\n"
        "    plt.plot(sub['date'], sub['price'], label=cat)",
        "for cat, g in df.groupby('category'):\n    plt.plot(g['date'], g['price'])",
        "import plotly.express as px\npx.line(df, x='date', y='price', color='category')",
        "key = 'category'\nfor name, g in df.groupby(key):\n    plt.plot(g['date'], g['price'])",
    ):
        assert problem(ASKED, code, lines) is None, code


def test_by_in_other_senses_asks_for_no_grouping():
    code = "top = df.nlargest(5, 'revenue')\nplt.bar(top['region'], top['revenue'])"
    facts = figure(bar_axes([9, 7, 3]))
    assert problem("the top 5 regions by revenue", code, facts) is None
    assert problem("regions sorted by revenue", code, facts) is None
    assert (
        problem(
            "price divided by revenue over date",
            "plt.plot(df['date'], df['price'] / df['revenue'])",
            figure(line_axes(1)),
        )
        is None
    )


def test_tick_or_legend_labels_with_the_columns_values_pass():
    columns = frame_columns(
        {"df": pd.DataFrame({"category": ["A", "B", "C"], "price": [1.0, 2.0, 3.0], "date": ["d1", "d2", "d3"]})}, ASKED
    )
    assert columns["df"]["category"] == ["A", "B", "C"] and columns["df"]["price"] is None
    code = "for c in 'ABC':\n    plt.plot(df['date'], df['price'] * 0 + ord(c), label=c)\n_ = df['category']"
    assert problem(ASKED, code, figure(line_axes(3, legend=["A", "B", "C"])), columns=columns) is None
    assert problem(ASKED, code, figure(line_axes(3, legend=["x", "y", "z"])), columns=columns) is not None


def test_several_columns_after_by_are_each_checked():
    found = problem(
        "revenue by region and category", "sns.barplot(data=df, x='region', y='revenue')", figure(bar_axes([1, 2, 3]))
    )
    first = str(found).splitlines()[0]
    assert "not split by 'category'" in first and "'region'" not in first
    assert (
        problem(
            "revenue by region and category",
            "sns.barplot(data=df, x='region', y='revenue', hue='category')",
            figure(bar_axes([1, 2, 3])),
        )
        is None
    )


def test_without_known_columns_only_the_figure_rules_apply():
    assert problem(ASKED, RAW_DAILY, figure(line_axes(1)), columns=None) is None
    assert problem("horizontal bars", BAR_CODE, figure(bar_axes([1, 2])), columns=None) is not None


# ---- what was verified ---------------------------------------------------------------------------


def test_verified_text_says_what_was_drawn_and_which_request_rules_it_passed():
    bars = Attempt(1, "", BARH_CODE, figure_facts=figure(bar_axes([1, 3, 5], "horizontal")))
    assert verified_text(bars) == "ran and drew 1 figure with 3 horizontal bars"
    assert verified_text(bars, "horizontal bars, sorted") == (
        "ran and drew 1 figure with 3 horizontal bars; follows the request: horizontal bars, sorted bars"
    )
    grouped = Attempt(1, "", BARH_CODE, figure_facts=figure(bar_axes([1, 3, 5], "horizontal")))
    assert verified_text(grouped, "revenue by region", COLUMNS).endswith(
        "follows the request: uses region and revenue, split by region"
    )
    lines = Attempt(1, "", RAW_DAILY, figure_facts=figure(line_axes(2), line_axes(1)))
    assert verified_text(lines) == "ran and drew 1 figure (2 panels) with 3 lines"
    assert verified_text(lines, ASKED, COLUMNS).startswith(
        "ran and drew 1 figure (2 panels) with 3 lines; "
        "follows the request: uses price; misses: it names the column 'category'"
    )
    plotly = Attempt(1, "", "", plotly_json=[{"data": [{"type": "bar", "x": [1], "y": [2]}]}])
    assert verified_text(plotly) == "ran and drew a plotly figure with 1 trace (bar)"
    assert verified_text(Attempt(1, "", "", error=None, images=[b"png"])) == (
        "ran and drew 1 image (nothing known about what is drawn)"
    )


# ---- through the loop and the real child kernel ---------------------------------------------------


class RecordingReplay(ReplayBackend):
    def __init__(self, path):
        super().__init__(path)
        self.asked = []

    async def async_generate(self, messages, on_text=None, **options):
        self.asked.append(list(messages))
        return await super().async_generate(messages, on_text, **options)


def fenced(code: str) -> str:
    return f"```python\n{code}\n```"


VERTICAL = fenced(
    "import matplotlib.pyplot as plt\ntotals = sales.groupby('region')['revenue'].sum()\n"
    "plt.bar(totals.index, totals.values)\nplt.show()"
)
HORIZONTAL = VERTICAL.replace("plt.bar(", "plt.barh(")


def test_vertical_bars_for_a_horizontal_request_are_fed_back_and_barh_passes(tmp_path):
    backend = RecordingReplay(write_replies(tmp_path / "r.jsonl", VERTICAL, HORIZONTAL))
    settings = VisCoder().with_overrides(backend="replay", retries=1, checks=True)
    result = runtime.run("horizontal bars of revenue by region", {"sales": sales_frame()}, settings, backend=backend)
    first, second = result.attempts
    assert first.error.ename == "NotAsRequested" and "bars are vertical" in str(first.error)
    (axes,) = first.figure_facts[0]["axes"]
    assert axes["orientation"] == "vertical" and axes["bars"] == 3
    assert axes["bar_sets"][0]["lengths"] == [14.0, 7.5, 3.0] and axes["ticks_x"] == ["North", "South", "West"]
    feedback = backend.asked[1][-1]["content"]
    assert "asks for horizontal bars, but the bars are vertical" in feedback and "plt.barh(" in feedback
    assert second.ok and result.final is second
    assert second.figure_facts[0]["axes"][0]["orientation"] == "horizontal"
    assert verified_text(second) == "ran and drew 1 figure with 3 horizontal bars"
    # Switched off, the vertical bars are the answer.
    backend = RecordingReplay(write_replies(tmp_path / "off.jsonl", VERTICAL))
    off = runtime.run(
        "horizontal bars of revenue by region",
        {"sales": sales_frame()},
        settings.with_overrides(request_checks=False),
        backend=backend,
    )
    assert off.ok and off.final.error is None and len(off.attempts) == 1
