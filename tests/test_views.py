"""The live view under the cell: what it shows between events (stock widgets, no kernel needed)."""

from viscoder_jupyter.core.events import AttemptStarted, CodeWritten, Notice, Status, TextStreamed
from viscoder_jupyter.frontends.progress import WidgetProgress


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
