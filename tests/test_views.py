"""The live view under the cell: what it shows between events (stock widgets, no kernel needed)."""

import re

from viscoder_jupyter.core.errors import CodeRaised
from viscoder_jupyter.core.events import (
    Attempt,
    AttemptFinished,
    AttemptStarted,
    CodeWritten,
    Notice,
    ReplyStarted,
    Status,
    TextStreamed,
)
from viscoder_jupyter.frontends.progress import WidgetProgress, static_record


def test_the_whole_reply_is_on_screen_before_the_code_runs(shell):
    shell()  # an IPython shell to display into
    view = WidgetProgress(total=2)
    view.handle(AttemptStarted(1, 2))
    for line in ["```python\n", "import matplotlib.pyplot as plt\n", "plt.bar([1], [2])\n", "```"]:
        view.handle(TextStreamed(1, line))  # faster than the redraw throttle
    assert "plt.bar" not in view.stream.value
    view.handle(CodeWritten(1, "plt.bar([1], [2])"))
    assert "plt.bar([1], [2])" in view.stream.value and "running the code" in view.status.value


def test_a_plain_text_record_of_the_run_stays_beside_the_widget(shell):
    shell()
    view = WidgetProgress(total=4)
    view.handle(Notice("wide is wide (300 columns)"))
    view.handle(Status("preparing the model"))
    view.handle(AttemptStarted(1, 4))
    text = view._bundle["text/plain"]
    assert text.startswith("VisCoder: attempt 1 of 4: writing code...") and "note: wide is wide" in text
    view.finish("VisCoder: interrupted")
    assert view._bundle["text/plain"].startswith("VisCoder: interrupted")


def test_the_status_says_what_the_model_reads_then_how_fast_it_writes(shell):
    """Not minutes of "writing code...": the prompt's size while it is read, then the tokens so
    far and their rate against the attempt's budget, so a stuck reply shows."""
    shell()
    view = WidgetProgress(total=4)
    view.handle(AttemptStarted(1, 4))
    view.handle(ReplyStarted(1, prompt_tokens=1843, new_tokens=1843, budget=180))
    assert "attempt 1 of 4: reading a prompt of 1843 tokens (0 s of the 180 s budget)" in view.status.value
    view.handle(ReplyStarted(1, prompt_tokens=2155, new_tokens=312, budget=0))
    assert "reading 312 new tokens of a 2155-token prompt (0 s)" in view.status.value
    view._shown_at = 0.0  # past the redraw throttle
    view.handle(TextStreamed(1, "```python\n"))
    assert "writing code: 1 token (" in view.status.value
    for _ in range(9):
        view.handle(TextStreamed(1, "x"))
    view._meter.first_at -= 2.0  # as if the nine came over two seconds
    view._ticked_at = 0.0  # a second since the last redraw
    view.tick()
    assert "writing code: 10 tokens, 4.5 tokens/s (" in view.status.value
    view.handle(CodeWritten(1, "x"))
    assert "running the code... (the model wrote 10 tokens in " in view.status.value


def test_each_reply_streams_on_its_own_so_fences_do_not_run_together(shell):
    """Sampled candidates are replies of one attempt: the second does not follow the first's
    closing fence on the same line ("``````python")."""
    shell()
    view = WidgetProgress(total=4)
    view.handle(AttemptStarted(3, 4))
    for candidate in range(2):
        view.handle(ReplyStarted(3))
        view.handle(TextStreamed(3, f"```python\nplt.plot([{candidate}])\n```"))
        view.handle(CodeWritten(3, f"plt.plot([{candidate}])"))
    assert "``````" not in view.stream.value and "plt.plot([1])" in view.stream.value
    assert "plt.plot([0])" not in view.stream.value


def test_the_finished_run_is_a_static_record_with_each_failed_attempt(shell):
    shell()
    view = WidgetProgress(total=2)
    view.handle(Notice("wide is wide (300 columns)"))
    view.handle(AttemptStarted(1, 2))
    failed = Attempt(
        1, "reply", "plt.bar(sales['Region'], sales['revenue'])", error=CodeRaised("KeyError", "'Region'", "")
    )
    view.handle(AttemptFinished(failed))
    view.finish("VisCoder: ran and drew 1 figure after 2 attempts")
    assert view.box.comm is None  # the widgets are closed: nothing for a saved notebook to miss
    record = static_record("VisCoder: ran and drew 1 figure", view._notes, view._entries)
    assert record.startswith("<div class='viscoder-record'><div><b>VisCoder</b>: ran and drew 1 figure</div>")
    assert "<div>Note: wide is wide (300 columns).</div>" in record
    assert "<details><summary>attempt 1: KeyError: &#x27;Region&#x27;</summary>" in record


def test_a_one_line_error_never_ends_in_the_middle_of_a_multi_line_value():
    series = "0     North\n1     South\n2      West\n3     North\nName: region, dtype: object"
    error = CodeRaised("TypeError", f"unsupported operand type(s) for +: 'int' and 'str', not {series}", "")
    assert error.one_line() == (
        "TypeError: unsupported operand type(s) for +: 'int' and 'str', not 0 North | 1 South | 2 West | "
        "3 North | Name: region, dtype: object"
    )
    long = CodeRaised("ValueError", "bad values:\n" + "\n".join(f"{i}     North" for i in range(200)), "")
    line = long.one_line()
    pieces = line.split(" | ")  # whole lines only, then how many are left
    assert len(line) <= 300 and pieces[0] == "ValueError: bad values:"
    assert all(re.fullmatch(r"\d+ North", piece) for piece in pieces[1:-1])
    assert re.fullmatch(r"\.\.\. \(\d+ more lines\)", pieces[-1])
