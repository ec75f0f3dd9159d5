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


def widget_texts(nb):
    states = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    return [m["state"].get("value", "") for m in states.values() if m.get("model_name") == "HTMLModel"]


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
    # The live view's final state, as the widget shows it.
    assert any("ran and drew 1 figure with 3 vertical bars after 2 attempts" in t for t in widget_texts(nb))
    assert any("KeyError" in t for t in widget_texts(nb))
    assert any("used the live frame `sales` instead of a file" in t for t in widget_texts(nb))  # the repair
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
