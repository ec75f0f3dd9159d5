"""Feedback that sees the data: what the model is told after a failure, with real frames."""

import pandas as pd
from helpers import write_replies

from viscoder_jupyter import runtime
from viscoder_jupyter.backends.replay import ReplayBackend
from viscoder_jupyter.core.errors import CodeRaised, FigureProblem
from viscoder_jupyter.core.feedback import data_hints, installed_versions
from viscoder_jupyter.core.settings import VisCoder

FRAME = pd.DataFrame(
    {"Country Name": ["United States", "Canada"], "GDP (USD)": ["21,000", "1,700"], "Year": [2020, 2020]}
)


def raised(ename, evalue):
    return CodeRaised(ename, evalue, f"{ename}: {evalue}")


def test_a_misspelt_column_gets_the_real_names_nearby():
    hints = data_hints(raised("KeyError", "'Country'"), "df['Country']", {"df": FRAME})
    assert "`df` has no column 'Country'; the closest are 'Country Name'" in hints
    assert f"'GDP (USD)' ({FRAME['GDP (USD)'].dtype})" in hints


def test_a_dtype_error_gets_dtype_and_values_of_the_columns_used():
    hints = data_hints(
        raised("TypeError", "unsupported operand type(s) for /: 'str' and 'int'"),
        "df['GDP (USD)'] / 1000",
        {"df": FRAME},
    )
    assert f"`df['GDP (USD)']`: dtype {FRAME['GDP (USD)'].dtype}" in hints and "'21,000'" in hints


def test_an_empty_figure_names_the_filter_value_that_matches_nothing():
    code = "us = df[df['Country Name'] == 'USA']\nplt.bar(us['Year'], us['Year'])"
    hints = data_hints(FigureProblem("EmptyFigure", "nothing drawn"), code, {"df": FRAME})
    assert "No row of `df['Country Name']` equals 'USA'" in hints and "'United States'" in hints


def test_a_changed_api_gets_the_installed_versions_and_styles():
    hints = data_hints(
        raised(
            "OSError",
            "'seaborn' is not a valid package style, path of style file, URL of "
            "style file, or library style name (library styles are listed in `style.available`)",
        ),
        "plt.style.use('seaborn')",
        {"df": FRAME},
    )
    assert installed_versions() in hints and "seaborn-v0_8" in hints


def test_errors_the_data_cannot_explain_add_nothing():
    assert data_hints(raised("ZeroDivisionError", "division by zero"), "1/0", {"df": FRAME}) == ""


class RecordingReplay(ReplayBackend):
    """The real replay backend, keeping what the loop asked: the feedback turn is what we check."""

    def __init__(self, path):
        super().__init__(path)
        self.asked = []

    async def async_generate(self, messages, on_text=None, **options):
        self.asked.append(list(messages))
        return await super().async_generate(messages, on_text, **options)


def test_the_loop_sends_the_hints_in_the_feedback_turn_only_when_switched_on(tmp_path):
    wrong = "```python\nimport matplotlib.pyplot as plt\nplt.bar(df['Country'], df['Year'])\n```"
    right = "```python\nimport matplotlib.pyplot as plt\nplt.bar(df['Country Name'], df['Year'])\n```"
    for switched_on in (True, False):
        backend = RecordingReplay(write_replies(tmp_path / f"{switched_on}.jsonl", wrong, right))
        settings = VisCoder().with_overrides(backend="replay", data_feedback=switched_on)
        result = runtime.run("bar of year by country", {"df": FRAME}, settings, backend=backend)
        assert result.ok and len(backend.asked) == 2
        feedback = backend.asked[1][-1]["content"]
        assert "KeyError" in feedback
        assert ("the closest are 'Country Name'" in feedback) is switched_on


def test_sampled_candidates_start_from_the_request_without_the_failed_code(tmp_path):
    broken = "```python\nimport matplotlib.pyplot as plt\nplt.bar(df['Country'], df['Year'])\n```"
    right = "```python\nimport matplotlib.pyplot as plt\nplt.bar(df['Country Name'], df['Year'])\n```"
    backend = RecordingReplay(write_replies(tmp_path / "r.jsonl", broken, broken, right))
    settings = VisCoder().with_overrides(backend="replay", retries=2, samples=2)
    result = runtime.run("bar of year by country", {"df": FRAME}, settings, backend=backend)
    assert result.ok and result.final.candidates == 1
    opening, stuck, sampled = backend.asked
    assert len(stuck) == 4 and len(sampled) == len(opening) == 2  # no failed code in view
    assert sampled[-1]["content"].startswith(opening[-1]["content"])
    assert "an earlier solution failed with `KeyError: 'Country'`" in sampled[-1]["content"]
