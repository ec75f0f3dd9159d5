"""Chat messages for the first turn and for each self-debug turn.

The first turn is PandasPlotBench's prompt, the shape VisCoder was trained and evaluated on,
byte for byte where the request is the benchmark's: measured on the offline 0.5B model, our
earlier rewording ("the dataframe is already loaded in `df`") passed fewer first turns (13 of
29 matplotlib tasks against 15). So the model is asked to load each frame from a CSV file, as
in training, and the repairs (codeblocks.repair_code) turn that line into the live frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .errors import AttemptError

SYSTEM_PROMPT = (
    "You are a helpful programming assistant proficient in python, matplotlib and pandas dataframes. "
    "All blocks of the python code must be enclosed in a block ```python\n SOME CODE```. "
    "Example for printing \"hello world\": ```python\n print('hello world')\n```"
)

PLOT_INSTRUCT = (
    "Write a code to build a plot of dataframe according to following instructions. "
    "Write a code that returns plot, not just function declaration.\n"
    "{load}. DO NOT alter {which} columns or add columns. {this} should remain intact.\n"
    "Do not write explanations. Just a code enclosed in codeblock. Important reasoning write in comments to the code.\n"
    "Make sure that all used libraries and functions are imported.\n"
    "Use only visualization libraries listed in the setup section, do not use others."
)

SETUP_INSTRUCT = (
    "Setup. Use Python programming language. Import essential libraries. The essential libraries needed are "
    "pandas for managing dataframes and {lib} with its subsidiary libraries for plotting. Ensure importing "
    "numpy as np and scipy if they are used in program. DO NOT use or import other visualization libraries. "
    "Use latest, not deprecated modules and packages."
)

DATA_INSTRUCT = (
    "Data description. Load {name} dataframe by single line {line}, DO NOT create it or load. "
    "The metadata of the dataframe is following:\n"
)

FEEDBACK = (
    "The above code {failed} with the following error:\n{error}\n"
    "Please provide a corrected version enclosed in ```python ... ```."
)


def library_rule(lib: str) -> str:
    """The sentence the benchmark glues (no space) after the setup text, per library."""
    if "matplotlib" in lib:
        return "DO NOT use seaborn for plotting. Only pure matplotlib. "
    if "seaborn" in lib:
        return ""
    return f"DO NOT use matplotlib for plotting. Only {lib} library. "


def plotting_request(instruction: str, parts: Iterable[str]) -> str:
    """The benchmark's user message: the instruction, then each non-empty part numbered on its
    own line, then each "\\n\\n" replaced once (three newlines in a row become two)."""
    text = instruction + "\n"
    number = 1
    for part in parts:
        part = part.lstrip()
        if part:
            text += f"{number}. {part}\n"
            number += 1
    return text.replace("\n\n", "\n")


def load_line(name: str, names: Sequence[str]) -> str:
    # One frame reads "data.csv", as in training; several need a file each to tell them apart.
    file = "data.csv" if len(names) == 1 else f"{name}.csv"
    return f'```{name} = pd.read_csv("{file}")```'


def first_turn(request: str | Sequence[str], descriptions: dict[str, str], lib: str) -> list[dict[str, str]]:
    """System and user messages for a new request; `descriptions` maps frame name to its descriptor.

    A request is one part, "Plot Description: ..."; a benchmark task comes as its own labelled
    parts (description, style), numbered one by one as the benchmark numbers them.
    """
    names = list(descriptions)
    if isinstance(request, str):
        parts = [f"Plot Description: {request.strip()}"]
    else:
        parts = list(request)
    if len(names) == 1:
        name = names[0]
        load = f"Load {name} dataframe by single line {load_line(name, names)}"
        which, this = f"{name} dataframe", f"This {name} dataframe"
    else:
        load = "Load the dataframes by the lines " + ", ".join(load_line(n, names) for n in names)
        which, this = "their", "They"
    parts.append(SETUP_INSTRUCT.format(lib=lib) + library_rule(lib))
    for name, description in descriptions.items():
        parts.append(DATA_INSTRUCT.format(name=name, line=load_line(name, names)) + "\n" + description)
    user = plotting_request(PLOT_INSTRUCT.format(load=load, which=which, this=this), parts)
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def feedback_turn(
    code: str, error: AttemptError, round_number: int, hints: str = "", facts: str = ""
) -> list[dict[str, str]]:
    """The assistant's code and the user's error report, appended after a failed attempt.

    `facts` (what the running code saw at the error, error_facts.py) and `hints` (facts from the
    live data, feedback.py) go between the error and the request for a corrected version.
    """
    failed = "failed" if round_number == 1 else "still failed"
    error_text = (
        error.feedback_text()
        + (f"\n\nWhat the running code saw at the error:\n{facts}" if facts else "")
        + (f"\n\nWhat the data says:\n{hints}" if hints else "")
    )
    return [
        {"role": "assistant", "content": f"```python\n{code}\n```"},
        {"role": "user", "content": FEEDBACK.format(failed=failed, error=error_text)},
    ]


def fresh_start(opening: list[dict[str, str]], error: AttemptError) -> list[dict[str, str]]:
    """The opening request again, naming the error the stuck attempts keep making."""
    last = opening[-1]
    note = (
        f"\n\nNote: an earlier solution failed with `{error.one_line()}` and could not be fixed. "
        "Write a different solution that avoids it."
    )
    return [*opening[:-1], {**last, "content": last["content"] + note}]
