"""Real notebooks through nbclient in real kernels, the way a user runs them."""

import json

from helpers import GOOD_BAR, key_error, write_replies
from nbformat.v4 import new_code_cell, new_notebook

from viscoder_jupyter.tools.run_notebook import execute

SETUP = """
import pandas as pd
sales = pd.DataFrame({"region": ["North", "South", "West", "North"], "revenue": [10.0, 7.5, 3.0, 4.0]})
answer = 42
"""
STATE = """
import json, pandas as pd
print(json.dumps({"hash": int(pd.util.hash_pandas_object(sales).sum() % 2**61),
                  "dtypes": list(map(str, sales.dtypes)),
                  "names": sorted(k for k in globals() if not k.startswith("_") and k not in ("json", "In", "Out", "exit", "quit", "get_ipython"))}))
"""


def run(tmp_path, replies, request_cell):
    replay = write_replies(tmp_path / "replies.jsonl", *replies)
    nb = new_notebook(
        cells=[
            new_code_cell("%load_ext viscoder_jupyter"),
            new_code_cell(f"%config VisCoder.backend = 'replay'\n%config VisCoder.replay = {replay!r}"),
            new_code_cell(SETUP),
            new_code_cell(STATE),
            new_code_cell(request_cell),
            new_code_cell(STATE),
        ]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return execute(nb, timeout=120)


def state(cell):
    return json.loads("".join(o["text"] for o in cell.outputs if o.get("name") == "stdout"))


def status_record(cell):
    """The output where the live view was: after the run, a static record (HTML and text)."""
    (record,) = [o for o in cell.outputs if o.get("metadata", {}).get("viscoder")]
    return record


def test_retry_after_key_error_shows_the_plot_and_inserts_the_cell(tmp_path):
    nb = run(tmp_path, [key_error(), GOOD_BAR], "%%viscoder sales\nbar chart of revenue by region")
    request = nb.cells[4]
    assert any("image/png" in o.get("data", {}) for o in request.outputs)
    text = [o["data"]["text/plain"] for o in request.outputs if "text/plain" in o.get("data", {})]
    assert any(
        "ran and drew 1 figure with 3 vertical bars after 2 attempts" in t for t in text
    )  # what non-widget front ends show
    inserted = nb.cells[5]
    assert inserted.metadata.get("viscoder") and inserted.source.startswith("# %%viscoder: bar chart")
    assert "df = sales" in inserted.source and not inserted.outputs
    # Where the live view was, the saved notebook holds a static record, as HTML and text, that
    # renders without the kernel (a reload, nbviewer, nbconvert): no widget to be "not found".
    record = status_record(request)
    assert record["metadata"]["viscoder"] == {"state": "done"}
    assert set(record["data"]) == {"text/html", "text/plain"}
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in request.outputs)
    html = record["data"]["text/html"]
    assert "ran and drew 1 figure with 3 vertical bars after 2 attempts" in html
    assert "<details><summary>attempt 1: KeyError: &#x27;Region&#x27;</summary>" in html
    assert "used the live frame `sales` instead of a file" in html  # the repair
    assert "attempt 1 failed: KeyError: 'Region'" in record["data"]["text/plain"]
    # The user's frame and names are exactly as before.
    assert state(nb.cells[3]) == state(nb.cells[6])


def test_failure_inserts_nothing_and_shows_the_last_error(tmp_path):
    nb = run(tmp_path, [key_error(), key_error()], "%%viscoder --retries 1\nbar chart")
    assert len(nb.cells) == 6
    printed = "".join(o.get("text", "") for o in nb.cells[4].outputs)
    assert "Last code tried" in printed and "KeyError" in printed
    assert state(nb.cells[3]) == state(nb.cells[5])


def test_bad_input_is_one_line_in_the_cell(tmp_path):
    nb = new_notebook(cells=[new_code_cell("%load_ext viscoder_jupyter"), new_code_cell("%%viscoder missing\nplot it")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=60, allow_errors=True).execute()
    # IPython shows a UsageError as one line on stderr: no traceback of ours.
    (shown,) = nb.cells[1].outputs
    assert shown["output_type"] == "stream" and shown["name"] == "stderr"
    assert shown["text"].strip().splitlines() == [
        "UsageError: No variable named 'missing'. DataFrames in this notebook: none."
    ]


def test_the_saved_notebook_renders_the_record_in_nbconvert_html(tmp_path):
    """`jupyter nbconvert --to html` of the saved notebook shows the run's last line where the
    live view was (a widget there would need the kernel that made it)."""
    from nbconvert import HTMLExporter

    nb = run(tmp_path, [key_error(), GOOD_BAR], "%%viscoder sales\nbar chart of revenue by region")
    page, _ = HTMLExporter().from_notebook_node(nb)
    assert "ran and drew 1 figure with 3 vertical bars after 2 attempts" in page
    assert "viscoder-record" in page
