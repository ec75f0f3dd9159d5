"""`--protocol paper` sends what PandasPlotBench's harness (as VisCoder runs it) sends, byte for byte."""

import json
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest

from viscoder_jupyter.core.errors import CodeRaised, ExecutionTimeout, NoFigure
from viscoder_jupyter.core.events import Attempt
from viscoder_jupyter.tools import bench
from viscoder_jupyter.tools import paper_protocol as pp

MINI = Path(__file__).parent / "data" / "pandasplotbench-mini"
DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "pandasplotbench"
INSTRUCTS = json.loads((MINI / "instructs.json").read_text(encoding="utf-8"))
TAIL = "Use latest, not deprecated modules and packages."


# ---- a reference of the harness's text, transcribed from its logic -------------------------
# code_plot_generator.py generate_plotting_request, benchmark.py (setup), task_changer.py
# (change_task_dp, data_descr_changer, head_df_description). Independent of paper_protocol.


def reference_head(frame):
    text = f"DataFrame with {len(frame.columns)} columns and {len(frame)} rows\n"
    text += "Column names and types: " + ", ".join([f"{c}: {frame[c].dtype}" for c in frame.columns])
    text += "\nHead:\n"
    with pd.option_context("display.max_columns", None, "display.max_colwidth", None, "display.width", 10000):
        head = str(frame.head().to_json())
    return text + head


def reference_setup(instructs, plotting_lib):
    setup = instructs["setup_instruct"].replace("[PLOTLIB]", plotting_lib)
    if ("matplotlib" not in plotting_lib) and ("seaborn" not in plotting_lib):
        setup += f"DO NOT use matplotlib for plotting. Only {plotting_lib} library. "
    if "matplotlib" in plotting_lib:
        setup += "DO NOT use seaborn for plotting. Only pure matplotlib. "
    return setup


def reference_datapoint(fields, csv_text, instructs, plotting_lib):
    """A dataset row in the Hugging Face column order, after TaskChanger.change_task_dp."""
    row = {
        "id": fields["id"],
        "code_plot": "",
        "code_data": "",
        "data_csv": csv_text,
        "task__plot_description": fields["task__plot_description"],
        "task__plot_style": fields["task__plot_style"],
        "plots_gt": [],
        "_task__plot_description_short": fields["_task__plot_description_short"],
        "_task__plot_description_short_single": fields["_task__plot_description_short_single"],
    }
    frame = pd.read_csv(StringIO(row["data_csv"]))
    # The harness ran pandas 2.x, which reads text columns as object (pandas 3: str).
    frame = frame.astype({c: object for c in frame.columns if str(frame[c].dtype) == "str"})
    # change_mapping order: setup, data_description, plot_description, plot_style; the first
    # two are new columns, appended in that order.
    row["task__setup"] = reference_setup(instructs, plotting_lib)
    row["task__data_description"] = (instructs["data_instruct"] + "\n" + reference_head(frame))[:4000]
    return row


def reference_request(datapoint, plotting_prompt):
    task = plotting_prompt + "\n"
    i = 1
    for name in [key for key in datapoint.keys() if key.startswith("task__")]:
        part = datapoint[name].lstrip()
        if len(part) > 0:
            task += f"{i}. {part}\n"
            i += 1
    return task.replace("\n\n", "\n")


def compare_all(folder, expected_count):
    instructs = json.loads((folder / "instructs.json").read_text(encoding="utf-8"))
    lines = [
        json.loads(line) for line in (folder / "tasks.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    tasks = {t.id: t for t in bench.load_tasks(folder)}
    assert len(tasks) == expected_count
    compared = 0
    for fields in lines:
        if fields["id"] not in tasks:
            continue
        task = tasks[fields["id"]]
        csv_text = (folder / fields["data_csv"]).read_text(encoding="utf-8")
        df = pd.read_csv(task.csv)
        for lib in ("matplotlib", "seaborn", "plotly"):
            expected = reference_request(
                reference_datapoint(fields, csv_text, instructs, lib), instructs["plot_instruct"]
            )
            messages = pp.paper_messages(task, df, instructs, lib, "full")
            assert messages == [
                {"role": "system", "content": instructs["system_prompt"]},
                {"role": "user", "content": expected},
            ], (fields["id"], lib)
            compared += 1
    assert compared == 3 * expected_count


def test_prompts_of_the_mini_tasks_match_the_harness():
    compare_all(MINI, 2)


@pytest.mark.skipif(not (DEV / "tasks.jsonl").is_file(), reason="../shared/data/pandasplotbench is missing")
def test_prompts_of_all_49_development_tasks_match_the_harness_for_the_three_libraries():
    compare_all(DEV, 49)


# ---- the first turn, rule by rule ----------------------------------------------------------

SMALL = {
    "id": 7,
    "task__plot_description": " Plot Description: draw a.\n",
    "task__plot_style": "  Plot Style Description: blue.",
    "_task__plot_description_short": "Plot Description: a.",
    "_task__plot_description_short_single": "Plot Description: a!",
}
TOY = {
    "system_prompt": "SYS",
    "plot_instruct": "PLOT",
    "setup_instruct": "Setup [PLOTLIB].",
    "data_instruct": "Data:\n",
}


def small_frame():
    return pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})


def test_the_whole_user_message_of_a_small_task():
    task = bench.Task(7, SMALL, Path("unused.csv"))
    system, user = pp.paper_messages(task, small_frame(), TOY, "matplotlib", "full")
    assert system == {"role": "system", "content": "SYS"}
    assert user == {
        "role": "user",
        "content": (
            "PLOT\n"
            "1. Plot Description: draw a.\n"
            "2. Plot Style Description: blue.\n"
            "3. Setup matplotlib.DO NOT use seaborn for plotting. Only pure matplotlib. \n"
            "4. Data:\n"
            "DataFrame with 2 columns and 2 rows\n"
            "Column names and types: a: int64, b: float64\n"
            'Head:\n{"a":{"0":1,"1":2},"b":{"0":0.5,"1":1.5}}\n'
        ),
    }


def test_parts_are_numbered_in_order_and_empty_ones_skipped():
    assert pp.plotting_request("P", ["  one", "", "   ", "two", "\nthree"]) == "P\n1. one\n2. two\n3. three\n"


def test_double_newlines_are_replaced_once_not_collapsed():
    # each "\n\n" becomes "\n" in one pass: three newlines leave two, four leave two
    assert pp.plotting_request("P\n", ["a\n", "b\n\n", "c\n\n\n"]) == "P\n1. a\n2. b\n\n3. c\n\n"


def test_short_instructions_replace_the_description_and_drop_the_style():
    task = bench.Task(7, SMALL, Path("unused.csv"))
    user = pp.paper_messages(task, small_frame(), TOY, "seaborn", "short")[1]["content"]
    assert user.startswith("PLOT\n1. Plot Description: a.\n2. Setup seaborn.\n3. Data:\nDataFrame")
    user = pp.paper_messages(task, small_frame(), TOY, "seaborn", "single")[1]["content"]
    assert user.startswith("PLOT\n1. Plot Description: a!\n2. Setup seaborn.\n")


def test_head_descriptor_format():
    df = pd.DataFrame({"x y": range(7), "v": [1.25] * 7})
    assert pp.head_descriptor(df) == (
        "DataFrame with 2 columns and 7 rows\nColumn names and types: x y: int64, v: float64\nHead:\n"
        + df.head().to_json()
    )
    assert '"4":4}' in pp.head_descriptor(df) and '"5"' not in pp.head_descriptor(df)  # five rows


def test_text_columns_are_named_object_as_under_the_harness_pandas():
    df = pd.DataFrame({"name": ["x", None], "n": [1, 2]})
    assert "Column names and types: name: object, n: int64\n" in pp.head_descriptor(df)
    assert pp.head_descriptor(df).endswith('{"name":{"0":"x","1":null},"n":{"0":1,"1":2}}')
    assert pp.dtype_name(pd.Series(["a"], dtype="string").dtype) == "string"  # an explicit choice stays


def test_data_part_is_instruction_newline_descriptor_cut_at_4000_as_a_whole():
    small = pp.data_part(INSTRUCTS["data_instruct"], small_frame())
    assert small == INSTRUCTS["data_instruct"] + "\n" + pp.head_descriptor(small_frame())
    wide = pd.DataFrame({f"column_{i}": [i * 1.5] * 5 for i in range(300)})
    cut = pp.data_part(INSTRUCTS["data_instruct"], wide)
    assert len(cut) == 4000
    assert cut == (INSTRUCTS["data_instruct"] + "\n" + pp.head_descriptor(wide))[:4000]
    task = bench.Task(7, SMALL, Path("unused.csv"))
    user = pp.paper_messages(task, wide, INSTRUCTS, "matplotlib", "full")[1]["content"]
    assert user.endswith("4. " + cut.replace("\n\n", "\n") + "\n")


@pytest.mark.parametrize(
    "lib, sentence",
    [
        ("matplotlib", TAIL + "DO NOT use seaborn for plotting. Only pure matplotlib. "),
        ("seaborn", TAIL),
        ("plotly", TAIL + "DO NOT use matplotlib for plotting. Only plotly library. "),
    ],
)
def test_setup_sentence_of_each_library(lib, sentence):
    setup = pp.setup_part(INSTRUCTS["setup_instruct"], lib)
    assert setup == INSTRUCTS["setup_instruct"].replace("[PLOTLIB]", lib).replace(TAIL, sentence)
    assert f"and {lib} with its subsidiary libraries" in setup
    task = bench.Task(7, SMALL, Path("unused.csv"))
    user = pp.paper_messages(task, small_frame(), INSTRUCTS, lib, "full")[1]["content"]
    assert f"\n3. {setup}\n4. Data description." in user


def test_bench_uses_this_module():
    assert bench.paper_messages is pp.paper_messages and bench.paper_prepare is pp.paper_prepare


# ---- code preparation, rule by rule --------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        'df = pd.read_csv("data.csv")',
        "df = pd.read_csv('data.csv')",
        'df=pd.read_csv("data.csv")',
        "df=pd.read_csv('data.csv')",
    ],
)
def test_each_read_csv_spelling_becomes_a_comment_mark(line):
    code = f"import pandas as pd\n    {line}  # load\nplt.show()"
    assert pp.paper_prepare(code, ["df"]) == "import pandas as pd\n    #  # load\nplt.show()"


@pytest.mark.parametrize(
    "line",
    [
        'df = pd.read_csv("data.csv", sep=",")',
        'data = pd.read_csv("data.csv")',
        'df =pd.read_csv("data.csv")',
        'df = pandas.read_csv("data.csv")',
    ],
)
def test_other_spellings_of_reading_the_data_stay(line):
    assert pp.paper_prepare(line, ["df"]) == line


def test_numpy_import_added_whenever_np_dot_appears():
    assert pp.paper_prepare("x = np.arange(3)", ["df"]) == "import numpy as np\nx = np.arange(3)"
    assert (
        pp.paper_prepare("import numpy as np\nx = np.pi", ["df"]) == "import numpy as np\nimport numpy as np\nx = np.pi"
    )
    assert pp.paper_prepare("y = inp.x", ["df"]) == "import numpy as np\ny = inp.x"  # a plain substring test
    assert pp.paper_prepare("import numpy as np\nx = 1", ["df"]) == "import numpy as np\nx = 1"


def test_savefig_and_write_image_become_show():
    assert pp.paper_prepare("plt.savefig('out.png', dpi=200)", ["df"]) == "plt.show()"
    assert pp.paper_prepare('fig.write_image("plot.png")\nfig.savefig(f)', ["df"]) == "fig.show()\nfig.show()"
    # the arguments end at the first ")"
    assert pp.paper_prepare("plt.savefig(os.path.join(d, 'a.png'))", ["df"]) == "plt.show())"


def test_try_except_pass_around_show_is_replaced_by_its_body():
    code = "plt.plot(df.x)\ntry:\n    plt.show()\nexcept Exception:\n    pass\nprint('done')"
    assert pp.paper_prepare(code, ["df"]) == "plt.plot(df.x)\nplt.show()\n\nprint('done')"
    # savefig is turned into show first, so a guarded savefig goes too
    assert pp.paper_prepare("try:\n    fig.savefig('a.png')\nexcept:\n    pass", ["df"]) == "fig.show()\n"


def test_try_except_pass_removal_keeps_the_harness_indentation_even_when_it_breaks():
    code = (
        "def draw():\n    try:\n        plt.plot([1])\n        plt.show()\n    except Exception as e:\n"
        "        pass\ndraw()"
    )
    prepared = pp.paper_prepare(code, ["df"])
    assert prepared == "def draw():\n    plt.plot([1])\n        plt.show()\n    \ndraw()"
    with pytest.raises(IndentationError):
        compile(prepared, "<cell>", "exec")


def test_without_a_python_block_the_whole_reply_less_stop_tokens():
    reply = "  <|start_header_id|>import matplotlib.pyplot as plt\nplt.plot([1])<|eot_id|><EOS><|endoftext|>\n"
    assert pp.paper_extract(reply) == "import matplotlib.pyplot as plt\nplt.plot([1])"
    assert pp.paper_extract("Sorry, I cannot do that.<|end_header_id|>") == "Sorry, I cannot do that."
    # other fences are not python blocks to the harness
    assert pp.paper_extract("```py\nx = 1\n```") == "```py\nx = 1\n```"


def test_first_python_block_only_stripped_to_the_next_fence_or_the_end():
    reply = "Here:\n```python\n  x = 1\n```\nand\n```python\ny = 2\n```<|eot_id|>"
    assert pp.paper_extract(reply) == "x = 1"
    assert pp.paper_extract("```python\nplt.plot([1])\n# cut off") == "plt.plot([1])\n# cut off"
    assert pp.paper_extract("```python3\nx = 1\n```") == "3\nx = 1"  # the harness's split, literally
    assert pp.paper_extract("```python\n```") == ""


def test_gather_is_extract_then_prepare():
    reply = '```python\nimport pandas as pd\ndf = pd.read_csv("data.csv")\nplt.savefig("a.png")\nnp.ones(2)\n```'
    assert pp.paper_gather(reply) == "import numpy as np\nimport pandas as pd\n#\nplt.show()\nnp.ones(2)"
    assert pp.paper_gather(reply) == pp.paper_prepare(pp.paper_extract(reply), ["df"])


# ---- self-debug turns ----------------------------------------------------------------------

OPENING = [{"role": "system", "content": "SYS"}, {"role": "user", "content": "TASK"}]


def failed(number, code, error):
    return Attempt(number=number, reply=f"```python\n{code}\n```", code=code, error=error)


def raised(name):
    return CodeRaised(name, "bad", f"---\n{name}  Traceback (most recent call last)\nCell In[1], line 1\n{name}: bad")


def ask(code, word, error_text):
    return [
        {"role": "assistant", "content": f"```python\n{code}\n```"},
        {
            "role": "user",
            "content": f"The above code {word} with the following error:\n{error_text}\n"
            "Please provide a corrected version enclosed in ```python ... ```.",
        },
    ]


def test_feedback_rounds_repeat_earlier_exchanges_as_the_harness_does():
    a1, a2, a3 = failed(1, "c1", raised("KeyError")), failed(2, "c2", NoFigure()), failed(3, "c3", raised("ValueError"))
    t1 = ask("c1", "failed", a1.error.traceback)
    t2 = ask("c2", "still failed", "Unexpected Error")
    t3 = ask("c3", "still failed", a3.error.traceback)
    assert pp.paper_feedback(OPENING, [a1]) == OPENING + t1
    assert pp.paper_feedback(OPENING, [a1, a2]) == OPENING + t1 + t2
    assert pp.paper_feedback(OPENING, [a1, a2, a3]) == OPENING + t1 + t2 + t2 + t3
    a4 = failed(4, "c4", raised("TypeError"))
    t4 = ask("c4", "still failed", a4.error.traceback)
    assert pp.paper_feedback(OPENING, [a1, a2, a3, a4]) == OPENING + t1 + t2 + t2 + t3 + t2 + t3 + t4


def test_feedback_error_texts():
    png = "b'" + "\\x89PNG" * 30 + "'"
    error = CodeRaised("ValueError", "x", f"ValueError: cannot decode {png} or b'ab'")
    assert pp.paper_error_text(error) == "ValueError: cannot decode b`...` or b'ab'"
    assert pp.paper_error_text(NoFigure()) == "Unexpected Error"
    timeout = ExecutionTimeout(10)
    assert pp.paper_error_text(timeout) == timeout.feedback_text()  # a documented deviation


def test_feedback_shows_the_gathered_reply_when_the_loop_ran_no_code():
    attempt = Attempt(number=1, reply="plt.plot([1]) <|eot_id|>", code="", error=NoFigure())
    assert pp.paper_feedback(OPENING, [attempt])[2]["content"] == "```python\nplt.plot([1])\n```"
