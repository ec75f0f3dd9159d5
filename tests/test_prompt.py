from viscoder_jupyter.errors import CodeRaised, NoFigure
from viscoder_jupyter.prompt import feedback_turn, first_turn


def test_first_turn_names_the_frame_variables_and_the_library():
    messages = first_turn("revenue by region", {"sales": "DataFrame with 2 columns"}, "seaborn")
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert "1. Plot Description: revenue by region" in user
    assert "seaborn with its subsidiary libraries" in user
    assert "variable `sales`" in user and "DataFrame with 2 columns" in user
    assert "read_csv" not in user


def test_matplotlib_forbids_seaborn_as_the_benchmark_does():
    user = first_turn("x", {"df": "d"}, "matplotlib")[1]["content"]
    assert "DO NOT use seaborn for plotting. Only pure matplotlib." in user


def test_feedback_uses_vis_coders_wording_with_the_traceback():
    error = CodeRaised("KeyError", "'Region'", "KeyError: 'Region'\n  line 3")
    first = feedback_turn("df['Region']", error, 1)
    assert first[0] == {"role": "assistant", "content": "```python\ndf['Region']\n```"}
    assert first[1]["content"].startswith("The above code failed with the following error:\nKeyError: 'Region'")
    assert first[1]["content"].endswith("Please provide a corrected version enclosed in ```python ... ```.")
    assert "still failed" in feedback_turn("x", NoFigure(), 2)[1]["content"]
