"""Load: two notebooks, run at the same time, each with several %%viscoder cells (Run All).

Every request must end as its replies say (plot and inserted cell, or nothing inserted),
nothing may cross between the notebooks (each request's code asserts on its own
notebook's data), and child kernels must not pile up: at most one per notebook at any
moment, none left once the notebooks' kernels are gone.
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import key_error, processes_gone, write_replies
from nbformat.v4 import new_code_cell, new_notebook

from viscoder_jupyter.child import processes
from viscoder_jupyter.tools.run_notebook import execute

REGIONS = {"A": ["North", "South"], "B": ["East", "West"]}
STATE = """
import json, pandas as pd
hidden = ("json", "In", "Out", "exit", "quit", "get_ipython")
print(json.dumps({"hash": int(pd.util.hash_pandas_object(sales).sum() % 2**61),
                  "names": sorted(k for k in globals() if not k.startswith("_") and k not in hidden)}))
"""


def good(nb: str, n: int) -> str:
    """A reply that only works on notebook `nb`'s data, and says which request it answers."""
    return (
        "```python\nimport matplotlib.pyplot as plt\n"
        f"assert sorted(sales['region'].unique()) == {REGIONS[nb]!r}, 'another notebook\\'s data'\n"
        "totals = sales.groupby('region')['revenue'].sum()\n"  # two rows a region: drawn unsummed, bars overlap
        f"plt.bar(totals.index, totals.values)\nplt.title('answer {nb}{n}')\nplt.show()\n```"
    )


def notebook(tmp_path, nb: str):
    replies = [key_error(), good(nb, 1), good(nb, 2), key_error(), key_error(), good(nb, 4)]
    replay = write_replies(tmp_path / f"replies-{nb}.jsonl", *replies)
    regions = REGIONS[nb] * 2
    cells = [
        "%load_ext viscoder_jupyter",
        f"%config VisCoder.backend = 'replay'\n%config VisCoder.replay = {replay!r}",
        f"import pandas as pd\nsales = pd.DataFrame({{'region': {regions!r}, 'revenue': [1.0, 2.0, 3.0, 4.0]}})",
        STATE,
        "%%viscoder sales\nbar chart of revenue by region",  # fails once, then works
        "%%viscoder sales\nthe same, again",  # works at once
        "%%viscoder sales --retries 1\nsomething that cannot work",  # fails twice: nothing inserted
        "%%viscoder sales\nlast one",  # works at once
        STATE,
    ]
    doc = new_notebook(cells=[new_code_cell(c) for c in cells])
    doc.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return doc


def child_kernels() -> set[int]:
    """Child kernel processes (the python inside any bwrap) under this test process."""
    found = set()
    for pid in processes.descendants(os.getpid()):
        if not processes.alive(pid):
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if (
            "ipykernel_launcher" in argv
            and os.path.basename(argv[0]).startswith("python")
            and any(a.endswith("/kernel.json") and "/vc-" in a for a in argv)
        ):
            found.add(pid)
    return found


class Sampler(threading.Thread):
    """Child kernels under the notebooks' kernels, every 0.2 s (not the ones pytest already had)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.before = child_kernels()
        self.seen: set[int] = set()
        self.most = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            now = child_kernels() - self.before
            self.seen |= now
            self.most = max(self.most, len(now))
            time.sleep(0.2)


def outputs_text(cell) -> str:
    return "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in cell.outputs)


@pytest.mark.timeout(300)
def test_two_notebooks_at_once(tmp_path):
    sampler = Sampler()
    sampler.start()
    try:
        with ThreadPoolExecutor(2) as pool:
            runs = {nb: pool.submit(execute, notebook(tmp_path, nb), 240) for nb in REGIONS}
            done = {nb: run.result(280) for nb, run in runs.items()}
    finally:
        sampler.stop.set()
        sampler.join(5)

    for nb, doc in done.items():
        sources = [c.source for c in doc.cells]
        inserted = [s for s in sources if s.startswith("# %%viscoder:")]
        # Requests 1, 2 and 4 inserted their own notebook's code; request 3 nothing.
        assert [s.splitlines()[0] for s in inserted] == [
            "# %%viscoder: bar chart of revenue by region",
            "# %%viscoder: the same, again",
            "# %%viscoder: last one",
        ]
        assert all(f"answer {nb}" in s and str(REGIONS[nb]) in s for s in inserted)
        requests = [c for c in doc.cells if c.source.startswith("%%viscoder")]
        plotted = [any("image/png" in o.get("data", {}) for o in c.outputs) for c in requests]
        assert plotted == [True, True, False, True]
        assert "ran and drew 1 figure with 2 vertical bars after 2 attempts" in outputs_text(requests[0])
        assert "Last code tried" in outputs_text(requests[2])
        states = [json.loads(outputs_text(c)) for c in doc.cells if c.source == STATE]
        assert states[0] == states[1]  # the user's frame and names, exactly as before

    assert sampler.seen, "no child kernel was seen"
    # Per notebook: the kernel in use, the spare booting for its next request (a fresh kernel per
    # request) and at most one used kernel still shutting down; a leak would exceed this soon.
    assert sampler.most <= 6
    assert processes_gone(sampler.seen, seconds=60)  # they went with their notebooks' kernels
