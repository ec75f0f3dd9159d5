from viscoder_jupyter.core.errors import CodeRaised, NoFigure
from viscoder_jupyter.core.prompt import feedback_turn, first_turn


def test_first_turn_names_the_frame_variables_and_the_library():
    messages = first_turn("revenue by region", {"sales": "DataFrame with 2 columns"}, "seaborn")
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert "\n1. Plot Description: revenue by region\n" in user
    assert "\n2. Setup." in user and "seaborn with its subsidiary libraries" in user
    # The trained shape: the model is told to read the frame from a file (repairs make it the live frame).
    assert 'Load sales dataframe by single line ```sales = pd.read_csv("data.csv")```' in user
    assert "\n3. Data description." in user and user.endswith("following:\nDataFrame with 2 columns\n")


def test_several_frames_each_get_their_own_file_and_part():
    user = first_turn("x", {"a": "A", "b": "B"}, "plotly")[1]["content"]
    assert '```a = pd.read_csv("a.csv")```, ```b = pd.read_csv("b.csv")```' in user
    assert "DO NOT alter their columns or add columns. They should remain intact." in user
    assert "\n3. Data description. Load a dataframe" in user and "\n4. Data description. Load b dataframe" in user
    assert "Only plotly library." in user


def test_matplotlib_forbids_seaborn_as_the_benchmark_does():
    user = first_turn("x", {"df": "d"}, "matplotlib")[1]["content"]
    assert "packages.DO NOT use seaborn for plotting. Only pure matplotlib. \n" in user


def test_first_turn_of_each_benchmark_task_is_the_harness_prompt():
    """The product asks in the shape VisCoder was trained on: for every development task and
    library, its first turn is byte for byte the harness's (paper_protocol, checked against
    the harness's text in test_paper_protocol)."""
    import json
    from pathlib import Path

    import pandas as pd
    import pytest

    from viscoder_jupyter.core.context import describe_frames
    from viscoder_jupyter.tools.bench import load_tasks
    from viscoder_jupyter.tools.paper_protocol import paper_messages

    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "pandasplotbench"
    if not (data / "tasks.jsonl").is_file():
        pytest.skip("PandasPlotBench data not beside the checkout")
    instructs = json.loads((data / "instructs.json").read_text(encoding="utf-8"))
    tasks = load_tasks(data)
    assert len(tasks) >= 49
    for lib in ("matplotlib", "seaborn", "plotly"):
        for task in tasks:
            df = pd.read_csv(task.csv)
            ours = first_turn(task.request_parts("full"), describe_frames({"df": df}), lib)
            assert ours == paper_messages(task, df, instructs, lib, "full"), (lib, task.id)


def test_feedback_uses_vis_coders_wording_with_the_traceback():
    error = CodeRaised("KeyError", "'Region'", "KeyError: 'Region'\n  line 3")
    first = feedback_turn("df['Region']", error, 1)
    assert first[0] == {"role": "assistant", "content": "```python\ndf['Region']\n```"}
    assert first[1]["content"].startswith("The above code failed with the following error:\nKeyError: 'Region'")
    assert first[1]["content"].endswith("Please provide a corrected version enclosed in ```python ... ```.")
    assert "still failed" in feedback_turn("x", NoFigure(), 2)[1]["content"]
