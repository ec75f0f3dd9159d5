"""PandasPlotBench's own protocol, as VisCoder's harness runs it: `viscoder bench --protocol paper`.

Rebuilt from the harness in TIGER-AI-Lab/VisCoder, eval/PandasPlotBench/plotting_benchmark/
(commit 37fefb73): `CodePlotGenerator.generate_plotting_request` and `gather_code`
(code_plot_generator.py), the setup sentence built in `PlottingBenchmark.__init__`
(benchmark.py), `TaskChanger.data_descr_changer` and `head_df_description` (task_changer.py,
PandasPlotBench's `TaskChanger`, which benchmark.py imports), and the self-debug turns of
`DebugSession` (debug_utils.py) with the error text `VisGenerator.parse_plots_notebook` records
(vis_generator.py). The harness's quirks are kept on purpose, since the point is to send what
it sends:

- the user message joins the parts with single newlines, then replaces each "\\n\\n" once
  (so three newlines in a row become two);
- the setup sentence is glued to the benchmark's setup text without a space
  ("...packages.DO NOT use seaborn ...");
- the data part is `data_instruct + "\\n" + descriptor`, cut as a whole at 4000 characters;
- `np.` anywhere in the code adds `import numpy as np`, even when it is already imported;
- `.savefig(...)` / `.write_image(...)` end at the first `)`, and a `try:` ... `except` ... `pass`
  around a `.show()` is replaced by its body, indentation and all, even when that leaves code
  that no longer parses;
- the third self-debug round repeats the first round's exchange (see `paper_feedback`).

Known deviations (documented, not reproduced):

- The harness (vllm_engine.py) wraps every prompt in Llama-3 header tokens
  (`<|start_header_id|>system<|end_header_id|>\\n\\n...<|eot_id|>`), whatever the model, Qwen
  included. We send chat messages and the model's own chat template applies.
- `--instruction short|single` has no counterpart in the harness (which always sends the full
  description and the style); ours puts the short text in the description part and leaves the
  style part out (the harness skips empty parts, numbering on).
- The harness ran pandas 2.x (`pandas = "^2.2.2"`), where text columns read from a CSV are
  `object`; from pandas 3 they are `str`. The descriptor names them `object` as the harness
  did (`dtype_name`), but the code then runs on this machine's pandas, `str` columns and all.
- Errors the harness cannot meet in the same form: on a timeout its notebook shows the
  KeyboardInterrupt traceback of the interrupted cell, we feed back our timeout message; a
  crashed kernel stops the harness, we feed back our message. IPython tracebacks name the
  cell (`Cell In[n], line k`): the harness runs the code after its own first lines
  (`# id = N`, `%matplotlib inline` or the plotly renderer, the task's `code_data`), so its
  line numbers are larger than ours.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..core.context import dtype_name
from ..core.errors import AttemptError, CodeRaised, NoFigure
from ..core.prompt import library_rule, plotting_request

DATA_PART_LIMIT = 4000  # characters of data instruction plus descriptor

# Removed from a reply that holds no ```python block.
STOP_TOKENS = ("<|eot_id|>", "<|endoftext|>", "<EOS>", "<|start_header_id|>", "<|end_header_id|>")

# The only spellings of loading the data the harness drops; each becomes "#".
READ_DATA_SPELLINGS = (
    'df = pd.read_csv("data.csv")',
    "df = pd.read_csv('data.csv')",
    'df=pd.read_csv("data.csv")',
    "df=pd.read_csv('data.csv')",
)

_WRITE_IMAGE = re.compile(r"\.write_image\([^)]*\)")
_SAVEFIG = re.compile(r"\.savefig\([^)]*\)")
_TRY_SHOW_PASS = re.compile(r"try:\s*(.*?\.show\(\).*?)except.*?pass", re.DOTALL)
_BYTES_LITERAL = re.compile(r"""b(['"])(?:\\.|[^\\])*?\1""", re.DOTALL)
_LONG_BYTES = 100  # bytes literals at least this long (between the quotes) are elided

FEEDBACK = (
    "The above code {failed} with the following error:\n{error}\n"
    "Please provide a corrected version enclosed in ```python ... ```."
)
NO_PLOT_ERROR = "Unexpected Error"  # what the harness records for code that drew nothing


# ---- the first turn --------------------------------------------------------------------


def setup_part(setup_instruct: str, lib: str) -> str:
    """The setup text with the library filled in and the harness's extra sentence glued on."""
    return setup_instruct.replace("[PLOTLIB]", lib) + library_rule(lib)


def head_descriptor(df) -> str:
    """The "head" data descriptor: shape, column types and the first rows as JSON."""
    types = ", ".join(f"{column}: {dtype_name(df[column].dtype)}" for column in df.columns)
    # The harness wraps to_json in display options; they do not touch JSON output.
    return (
        f"DataFrame with {len(df.columns)} columns and {len(df)} rows\n"
        f"Column names and types: {types}\nHead:\n{df.head().to_json()}"
    )


def data_part(data_instruct: str, df) -> str:
    return (data_instruct + "\n" + head_descriptor(df))[:DATA_PART_LIMIT]


def paper_messages(task, df, instructs: dict, lib: str, instruction: str) -> list[dict[str, str]]:
    """System and user messages of the harness for `task` (a bench.Task: its `fields`)."""
    parts = [
        *task.request_parts(instruction),
        setup_part(instructs["setup_instruct"], lib),
        data_part(instructs["data_instruct"], df),
    ]
    return [
        {"role": "system", "content": instructs["system_prompt"]},
        {"role": "user", "content": plotting_request(instructs["plot_instruct"], parts)},
    ]


# ---- code preparation ------------------------------------------------------------------


def paper_extract(reply: str) -> str:
    """The text of the first ```python block (to the next fence or the end), stripped; without
    one, the whole reply less the stop tokens. Never None: the harness runs whatever it gets."""
    if "```python" in reply:
        block = reply.split("```python", 1)[1]
        return block.split("```", 1)[0].strip()
    for token in STOP_TOKENS:
        reply = reply.replace(token, "")
    return reply.strip()


def paper_prepare(code: str, frame_names: list[str]) -> str:
    """The harness's edits to the extracted code. `frame_names` is unused: the benchmark's
    frame is always `df`."""
    for spelling in READ_DATA_SPELLINGS:
        code = code.replace(spelling, "#")
    if "np." in code:
        code = "import numpy as np\n" + code
    code = _WRITE_IMAGE.sub(".show()", code)
    code = _SAVEFIG.sub(".show()", code)
    return _TRY_SHOW_PASS.sub(r"\1", code)


def paper_gather(reply: str) -> str:
    """`gather_code`: from the raw reply to the code the harness runs."""
    return paper_prepare(paper_extract(reply), ["df"])


# ---- self-debug turns ------------------------------------------------------------------


def elide_long_bytes(text: str) -> str:
    """Bytes literals of 100 characters or more become b`...` (as in the harness's error text)."""

    def replace(match: re.Match) -> str:
        literal = match.group(0)
        return "b`...`" if len(literal) - 3 >= _LONG_BYTES else literal

    return _BYTES_LITERAL.sub(replace, text)


def paper_error_text(error: AttemptError) -> str:
    """The error the harness would record: the IPython traceback (ANSI codes and long bytes
    literals removed), or "Unexpected Error" for code that ran but drew nothing."""
    if isinstance(error, NoFigure):
        return NO_PLOT_ERROR
    if isinstance(error, CodeRaised) and error.traceback:
        return elide_long_bytes(error.traceback)
    return error.feedback_text()  # timeouts, crashed kernels: see the module's deviations


def _exchange(attempt, failed: str) -> list[dict[str, str]]:
    # The harness shows the code it ran; where our loop found no code to run, that is the
    # gathered reply.
    code = attempt.code or paper_gather(attempt.reply)
    return [
        {"role": "assistant", "content": f"```python\n{code}\n```"},
        {"role": "user", "content": FEEDBACK.format(failed=failed, error=paper_error_text(attempt.error))},
    ]


def paper_feedback(opening: list[dict[str, str]], attempts: Sequence) -> list[dict[str, str]]:
    """The whole conversation the harness sends after `attempts` (loop Attempts, all failed).

    Debug round 1 is `opening` + the first attempt's exchange ("failed"); round k+1 is round
    k's conversation followed by the exchanges of *all* debug attempts so far ("still
    failed"), as `DebugSession._generate_multi_turn_conversation` builds it. So from round 3
    on, earlier exchanges come again: round 3 holds attempt 2's exchange twice.
    """
    if not attempts:
        return list(opening)
    conversation = list(opening) + _exchange(attempts[0], "failed")
    debug = [_exchange(attempt, "still failed") for attempt in attempts[1:]]
    for rounds_done in range(1, len(debug) + 1):
        for exchange in debug[:rounds_done]:
            conversation += exchange
    return conversation
