"""Chat messages for the first turn and for each self-debug turn.

The wording follows PandasPlotBench's prompts (VisCoder was trained and evaluated
on them); only the data instruction changes, since our frames already live in
variables instead of a CSV file.
"""
from __future__ import annotations

import re

from .errors import AttemptError

SYSTEM_PROMPT = (
    "You are a helpful programming assistant proficient in python, matplotlib and pandas dataframes. "
    "All blocks of the python code must be enclosed in a block ```python\n SOME CODE```. "
    "Example for printing \"hello world\": ```python\n print('hello world')\n```"
)

PLOT_INSTRUCT = (
    "Write a code to build a plot of dataframe according to following instructions. "
    "Write a code that returns plot, not just function declaration.\n"
    "{frames_sentence} DO NOT alter {them} or add columns. {it_they} should remain intact.\n"
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
MATPLOTLIB_ONLY = " DO NOT use seaborn for plotting. Only pure matplotlib. "

DATA_INSTRUCT = (
    "Data description. The dataframe {name} is already loaded in the variable `{name}`, DO NOT create it or load it. "
    "The metadata of the dataframe is following:\n{description}"
)

FEEDBACK = (
    "The above code {failed} with the following error:\n{error}\n"
    "Please provide a corrected version enclosed in ```python ... ```."
)


def first_turn(request: str, descriptions: dict[str, str], lib: str) -> list[dict[str, str]]:
    """System and user messages for a new request; `descriptions` maps frame name to its descriptor."""
    names = list(descriptions)
    quoted = ", ".join(f"`{n}`" for n in names)
    if len(names) == 1:
        sentence = f"The dataframe is already loaded in the variable {quoted}; use it, do not load data from files."
        them, it_they = f"{quoted} dataframe columns", "It"
    else:
        sentence = f"The dataframes are already loaded in the variables {quoted}; use them, do not load data from files."
        them, it_they = "their columns", "They"
    setup = SETUP_INSTRUCT.format(lib=lib) + (MATPLOTLIB_ONLY if lib == "matplotlib" else "")
    parts = [
        PLOT_INSTRUCT.format(frames_sentence=sentence, them=them, it_they=it_they),
        f"1. Plot Description: {request.strip()}",
        f"2. {setup}",
    ]
    for i, (name, description) in enumerate(descriptions.items(), start=3):
        parts.append(f"{i}. " + DATA_INSTRUCT.format(name=name, description=description))
    user = re.sub(r"\n{3,}", "\n\n", "\n\n".join(parts))
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def feedback_turn(code: str, error: AttemptError, round_number: int, hints: str = "") -> list[dict[str, str]]:
    """The assistant's code and the user's error report, appended after a failed attempt.

    `hints` (facts from the live data, feedback.py) go between the error and the request
    for a corrected version.
    """
    failed = "failed" if round_number == 1 else "still failed"
    error_text = error.feedback_text() + (f"\n\nWhat the data says:\n{hints}" if hints else "")
    return [
        {"role": "assistant", "content": f"```python\n{code}\n```"},
        {"role": "user", "content": FEEDBACK.format(failed=failed, error=error_text)},
    ]


def fresh_start(opening: list[dict[str, str]], error: AttemptError) -> list[dict[str, str]]:
    """The opening request again, naming the error the stuck attempts keep making."""
    last = opening[-1]
    note = (f"\n\nNote: an earlier solution failed with `{error.one_line()}` and could not be fixed. "
            "Write a different solution that avoids it.")
    return [*opening[:-1], {**last, "content": last["content"] + note}]
