"""%%viscoder on a bare IPython shell, the replay backend and the real child kernel."""

import pytest
from helpers import GOOD_BAR, fingerprint, key_error, magics_of
from IPython.core.error import UsageError

PNG = b"\x89PNG\r\n\x1a\n"


def inserted_cell_of(ip):
    """What set_next_input left for the front end (a bare shell keeps it here)."""
    return getattr(ip, "rl_next_input", None)


inserted = inserted_cell_of


def user_names(ip):
    return sorted(k for k in ip.user_ns if not k.startswith("_"))


def test_working_code_is_inserted_below_with_the_request_quoted(shell):
    ip = shell(GOOD_BAR)
    before_names, before = user_names(ip), fingerprint(ip.user_ns["sales"])
    ip.run_cell_magic("viscoder", "", "bar chart of revenue by region")
    result = magics_of(ip).last_result
    assert result.ok and result.images[0].startswith(PNG)
    inserted = inserted_cell_of(ip)
    assert inserted.startswith("# %%viscoder: bar chart of revenue by region\n")
    assert "df = sales.copy()\n" in inserted  # the model's read_csv now reads a copy of the live frame
    assert "read_csv" not in inserted
    assert user_names(ip) == before_names and fingerprint(ip.user_ns["sales"]) == before


def test_a_key_error_is_fed_back_and_the_second_attempt_wins(shell):
    ip = shell(key_error(), GOOD_BAR)
    ip.run_cell_magic("viscoder", "sales", "revenue by region")
    attempts = magics_of(ip).last_result.attempts
    assert [a.ok for a in attempts] == [False, True]
    assert attempts[0].error.ename == "KeyError" and "Region" in attempts[0].error.evalue


def test_when_every_attempt_fails_nothing_is_inserted(shell, capsys):
    ip = shell(key_error(), key_error())
    ip.run_cell_magic("viscoder", "sales --retries 1", "revenue by region")
    assert magics_of(ip).last_result.ok is False
    assert not inserted(ip)
    out = capsys.readouterr().out
    assert "no working plot after 2 attempts" in out and "KeyError" in out


def test_config_and_flags_set_the_options(shell):
    ip = shell(GOOD_BAR)
    ip.run_line_magic("config", "VisCoder.insert = False")
    ip.run_cell_magic("viscoder", "", "bar chart")
    assert magics_of(ip).last_result.ok and not inserted(ip)
    ip2 = shell(key_error(), GOOD_BAR)
    ip2.run_cell_magic("viscoder", "--retries 0", "bar chart")
    assert len(magics_of(ip2).last_result.attempts) == 1


@pytest.mark.parametrize(
    "line, body, message",
    [
        ("nope", "plot", "No variable named 'nope'"),
        ("numbers", "plot", "is a list, not a pandas DataFrame"),
        ("", "   ", "%%viscoder needs your request in the cell"),
        ("empty", "plot", "is empty"),
        ("sales --lib ggplot", "plot", "Unknown --lib 'ggplot'"),
        ("sales --retries many", "plot", "invalid int value"),
        ("sales --backend nope", "plot", "Unknown backend 'nope'"),
    ],
)
def test_bad_input_is_one_usage_error_and_changes_nothing(shell, line, body, message):
    import pandas as pd

    ip = shell(GOOD_BAR)
    ip.user_ns.update(numbers=[1, 2, 3], empty=pd.DataFrame())
    before = user_names(ip)
    with pytest.raises(UsageError, match=message):
        ip.run_cell_magic("viscoder", line, body)
    assert user_names(ip) == before and not inserted(ip)


def test_no_dataframe_at_all(shell):
    ip = shell(GOOD_BAR)
    del ip.user_ns["sales"]
    with pytest.raises(UsageError, match="No DataFrame found"):
        ip.run_cell_magic("viscoder", "", "plot")


def test_a_used_up_replay_file_says_so(shell):
    ip = shell(GOOD_BAR)
    ip.run_cell_magic("viscoder", "", "bar chart")
    with pytest.raises(UsageError, match="All 1 recorded replies"):
        ip.run_cell_magic("viscoder", "", "bar chart")


def test_a_reply_without_code_is_fed_back_as_an_error(shell):
    ip = shell("I am sorry, I cannot draw that.", GOOD_BAR)
    ip.run_cell_magic("viscoder", "", "bar chart")
    attempts = magics_of(ip).last_result.attempts
    assert attempts[0].error.ename == "NoCode" and attempts[1].ok


def test_code_that_draws_nothing_is_retried(shell):
    ip = shell("```python\nprint(sales.shape)\n```", GOOD_BAR)
    ip.run_cell_magic("viscoder", "", "bar chart")
    attempts = magics_of(ip).last_result.attempts
    assert attempts[0].error.ename == "NoFigure" and "(4, 2)" in attempts[0].stdout
    assert attempts[1].ok


def test_what_was_mended_before_running_is_in_the_history(shell, capsys):
    ip = shell(GOOD_BAR)
    ip.run_cell_magic("viscoder", "", "bar chart of revenue by region")
    assert magics_of(ip).last_result.final.repairs == [
        "used the live frame `sales` instead of a file: `df = pd.read_csv('data.csv')`"
    ]
    assert "attempt 1: mended before running: used the live frame `sales`" in capsys.readouterr().out


def test_help_is_found_with_one_percent_and_says_it_is_a_cell_magic(shell):
    ip = shell(GOOD_BAR)
    info = ip.object_inspect("%viscoder")
    assert info["found"] and "\n  %%viscoder [--lib LIB]" in info["docstring"]
    assert "openai" in info["docstring"] and "llamacpp" in info["docstring"]
    assert "--attempt-budget" in info["docstring"]


@pytest.mark.parametrize("cell", ["%viscoder sales", "%%viscoder sales", "%%viscoder sales\n   \n"])
def test_a_magic_without_a_request_says_which_cell_to_write(shell, cell, capsys):
    """The line magic, and the cell magic with nothing below its line, both show the cell to write
    (with the user's own line); neither sends the user to the other form."""
    ip = shell(GOOD_BAR)
    ip.run_cell(cell)
    said = capsys.readouterr().err
    assert "UsageError: %%viscoder needs your request in the cell" in said
    assert "a cell like this:\n%%viscoder sales\na bar chart of" in said
    assert "Did you mean" not in said and "is a cell magic" not in said
    assert not inserted(ip)


def test_a_reply_that_repeats_itself_is_stopped_and_its_code_up_to_the_loop_runs(shell, capsys):
    """A reply stuck in a loop (the same line again and again, as the offline model does until its
    token limit) is stopped after a few copies: one copy is kept, the code before it runs and draws."""
    body = GOOD_BAR.split("```python\n")[1].split("```")[0]
    looping = "```python\n" + body + "plt.show()\n" * 200
    ip = shell(looping)
    ip.run_cell_magic("viscoder", "", "bar chart of revenue by region")
    result = magics_of(ip).last_result
    (attempt,) = result.attempts
    assert result.ok and attempt.reply.count("plt.show()") == 1  # the body's own: the first of the six
    assert attempt.stopped == "it repeated itself: `plt.show()` came 6 times running"
    assert (
        attempt.repairs[0]
        == "stopped the reply: it repeated itself: `plt.show()` came 6 times running; the code up to there was kept"
    )
    assert "mended before running: stopped the reply" in capsys.readouterr().out


def test_a_wide_frame_is_said_in_the_live_view(shell, capsys):
    import numpy as np
    import pandas as pd

    ip = shell(GOOD_BAR.replace("region", "m_0").replace("revenue", "m_1"))
    ip.user_ns["wide"] = pd.DataFrame({f"m_{i}": np.arange(5.0) for i in range(300)})
    ip.run_cell_magic("viscoder", "wide", "bar chart of m_1 by m_0")
    assert "note: wide is wide (300 columns): the model sees the names of" in capsys.readouterr().out


def test_a_backend_failure_says_how_to_try_again_where_the_user_is():
    from viscoder_jupyter.core.errors import BackendFailed, RequestError, with_retry_hint
    from viscoder_jupyter.frontends.comm import _error

    broke = BackendFailed("The server went away. Nothing was inserted.")
    assert with_retry_hint(broke, "Run the cell again to retry.").endswith("inserted. Run the cell again to retry.")
    assert _error("r", broke)["message"].endswith("Press Fix again to retry.")
    assert with_retry_hint(RequestError("No frame."), "Run the cell again.") == "No frame."


# Code with characters HTML would take for markup, and a try at closing the block early.
TRICKY_BAR = (
    "```python\nimport matplotlib.pyplot as plt\n"
    "# </pre></details><script>alert('x')</script>\n"
    "totals = sales.groupby('region')['revenue'].sum()\n"
    "plt.bar(totals.index, totals.values)\nplt.title('Revenue <by> region & \"all\"')\nplt.show()\n```\n"
)


def code_block(output) -> dict | None:
    """The output's data if it is the copyable code block (not the run's record, whose attempts
    are <details> too)."""
    data = output.get("data", {})
    is_record = "viscoder" in output.get("metadata", {})
    return data if "<details" in data.get("text/html", "") and not is_record else None


def test_the_working_code_is_also_a_copyable_block_in_the_output(tmp_path):
    """Front ends that ignore set_next_input (VS Code) still have the code: a closed <details>
    block with the code escaped, and plain text for front ends without HTML. A real kernel."""
    import html

    from helpers import write_replies
    from nbformat.v4 import new_code_cell, new_notebook

    from viscoder_jupyter.tools.run_notebook import execute

    replay = write_replies(tmp_path / "replies.jsonl", TRICKY_BAR, GOOD_BAR)
    nb = new_notebook(
        cells=[
            new_code_cell(
                "%load_ext viscoder_jupyter\n"
                f"%config VisCoder.backend = 'replay'\n%config VisCoder.replay = {replay!r}\n"
                "import pandas as pd\n"
                "sales = pd.DataFrame({'region': ['North', 'South'], 'revenue': [10.0, 7.5]})"
            ),
            new_code_cell("%%viscoder sales\nrevenue by region"),
            new_code_cell("%%viscoder sales --no-insert\nbar chart of revenue by region"),
        ]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb = execute(nb, timeout=120)
    code = nb.cells[2].source  # the inserted cell, as the front end got it
    assert "<script>" in code and "Revenue <by> region" in code
    blocks = [code_block(o) for o in nb.cells[1].outputs if code_block(o)]
    assert len(blocks) == 1
    block = blocks[0]["text/html"]
    assert f'<pre style="user-select: all">{html.escape(code)}</pre></details>' in block
    assert "<script>" not in block and "<by>" not in block
    assert "Copy" in block and "<details class" in block and " open" not in block  # closed until clicked
    assert blocks[0]["text/plain"] == "Working code:\n" + code
    # No cell inserted (as where the front end ignores set_next_input): the block still holds the code.
    assert len(nb.cells) == 4
    plain = [code_block(o)["text/plain"] for o in nb.cells[3].outputs if code_block(o)]
    assert (
        plain[0].startswith("Working code:\n# %%viscoder: bar chart of revenue by region\n")
        and "df = sales.copy()\n" in plain[0]
    )
