"""What the running code saw at the error, through a real child kernel: each kind of fact from a
real failing attempt, read from the installed libraries (no table of known mistakes), and the
loop sending it to the model only with `runtime_facts` on."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import write_replies
from test_feedback import RecordingReplay

from viscoder_jupyter import runtime
from viscoder_jupyter.child.executor import ChildKernel
from viscoder_jupyter.core.error_facts import error_facts
from viscoder_jupyter.core.errors import CodeRaised, NoCodeInReply
from viscoder_jupyter.core.events import Attempt
from viscoder_jupyter.core.settings import VisCoder


def wait(coro, timeout: float = 120):
    return runtime.submit(coro).result(timeout)


@pytest.fixture(scope="module")
def kernel():
    k = ChildKernel()
    wait(k.async_load_frames({"df": pd.DataFrame({"region": ["N", "S", "W"], "revenue": [3.0, 5.0, 2.0]})}))
    yield k
    wait(k.async_shutdown())


def facts_of(kernel, code: str) -> list[str]:
    outcome = wait(kernel.async_run("import matplotlib.pyplot as plt\nimport numpy as np\n" + code, 30))
    assert isinstance(outcome.error, CodeRaised), outcome.error
    return list(outcome.error.runtime_facts)


def said(facts: list[str], *words: str) -> bool:
    return any(all(w in fact for w in words) for fact in facts)


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    "code, words",
    [
        # An attribute the object lacks: its type and its real, nearest attribute names.
        ("fig, ax = plt.subplots()\nax.set_xtickz([1])", ("a matplotlib Axes", "`set_xticks`")),
        # The pyplot module confused with an Axes: where the attribute really is.
        ("plt.plot([1, 2])\nplt.yaxis.set_visible(False)", ("'yaxis' exists on", "an Axes (ax.yaxis")),
        # An array of Axes from subplots: its shape and how to index it.
        ("fig, axes = plt.subplots(2, 3)\naxes.bar(['a'], [1])", ("array of Axes with shape (2, 3)", "axes[0, 0].bar")),
        # A matplotlib artist's property misspelt: the artist's real settable properties.
        ("plt.bar(df['region'], df['revenue'], colour='red')", ("Rectangle takes no 'colour'", "`color`")),
        # A keyword that belongs to another call: which calls take it.
        ("fig = plt.figure()\nfig.set(projection='polar')", ("'projection' is a keyword of", "add_subplot")),
        # A misspelt keyword of a plain function: its real keywords, nearest first.
        ("plt.hist(df['revenue'], binz=3)", ("takes no 'binz'", "`bins`")),
        # Shapes on the failing line.
        ("y = [1, 2]\nplt.plot(df['revenue'], y)", ("`df['revenue']` is a pandas Series of shape (3,)",)),
        ("y = [1, 2]\nplt.plot(df['revenue'], y)", ("`y` is a list of 2 items",)),
        ("img = np.arange(20)\nplt.imshow(img)", ("`img` is a numpy ndarray of shape (20,)",)),
        ("column = 'revenue'\nplt.imshow(df[column])", ("`df[column]` is a pandas Series of shape (3,)",)),
        # Names a library takes: the nearest real ones.
        ("plt.scatter([1], [2], c=[1], cmap='virdis')", ("'virdis' is not a colormap", "`viridis`")),
        ("plt.plot([1], [2], marker='sqare')", ("'sqare' is not a marker", "`s` (square)")),
    ],
)
def test_a_failing_attempt_brings_facts_from_the_live_objects(kernel, code, words):
    facts = facts_of(kernel, code)
    assert said(facts, *words), facts
    assert len(facts) <= 6 and all(len(f) <= 240 for f in facts)


@pytest.mark.timeout(120)
def test_an_error_with_nothing_to_explain_brings_no_facts(kernel):
    assert facts_of(kernel, "1 / 0") == []


@pytest.mark.timeout(120)
def test_code_that_breaks_the_fact_gathering_still_fails_as_itself(kernel):
    # The attempt wipes the module that gathers facts: the error is still the code's own.
    outcome = wait(
        kernel.async_run("import sys\nsys.modules['_viscoder_error_facts'].facts_for = None\nplt.plot(q)", 30)
    )
    assert isinstance(outcome.error, CodeRaised) and outcome.error.ename == "NameError"


def test_a_reply_cut_at_the_token_limit_is_named_as_such():
    cut = Attempt(number=1, reply="```python\nplt.bar(", code="plt.bar(", completion_tokens=768)
    cut.error = CodeRaised("SyntaxError", "incomplete input", "SyntaxError: incomplete input")
    assert "cut at the limit of 768 tokens" in error_facts(cut, 768)
    unfinished_fence = Attempt(number=1, reply="```python\nx = 1", code="", completion_tokens=768)
    unfinished_fence.error = NoCodeInReply()
    assert "cut at the limit" in error_facts(unfinished_fence, 768)
    short = Attempt(number=1, reply="", code="plt.bar(", completion_tokens=40)
    short.error = cut.error
    assert error_facts(short, 768) == ""


@pytest.mark.timeout(240)
def test_the_loop_sends_the_facts_in_the_feedback_turn_only_when_switched_on(tmp_path):
    wrong = "```python\nimport matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.bar(df['region'], df['revenue'], colour='red')\n```"
    right = "```python\nimport matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.bar(df['region'], df['revenue'], color='red')\n```"
    frames = {"df": pd.DataFrame({"region": ["N", "S"], "revenue": [3.0, 5.0]})}
    for switched_on in (True, False):
        backend = RecordingReplay(write_replies(tmp_path / f"{switched_on}.jsonl", wrong, right))
        settings = VisCoder().with_overrides(backend="replay", runtime_facts=switched_on)
        result = runtime.run("red bars of revenue by region", frames, settings, backend=backend)
        assert result.ok and len(backend.asked) == 2
        feedback = backend.asked[1][-1]["content"]
        assert "unexpected keyword argument 'colour'" in feedback
        assert ("What the running code saw at the error:\n- A Rectangle takes no 'colour'" in feedback) is switched_on
