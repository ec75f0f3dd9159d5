"""A reply never runs for minutes: each attempt's time budget (VisCoder.attempt_budget) and the stop
of a reply stuck in a loop. The budget is tested with the real offline GGUF in llama.cpp; the loop
detection on its own, on the offline model's recorded replies, and through the loop with a replay
(the real model does not loop on demand)."""

from __future__ import annotations

import asyncio
import os

import pandas as pd
import pytest
from helpers import GOOD_BAR, write_replies
from test_openai_backend import server  # noqa: F401 - the fixture: a scripted OpenAI-compatible server

from viscoder_jupyter import runtime
from viscoder_jupyter.backends import llamacpp_engine
from viscoder_jupyter.backends.replay import ReplayBackend
from viscoder_jupyter.backends.streaming import RepetitionWatcher
from viscoder_jupyter.core import loop
from viscoder_jupyter.core.errors import BackendUnavailable, PromptOverBudget, ReplyOverBudget
from viscoder_jupyter.core.events import ReplyStarted, TextStreamed
from viscoder_jupyter.core.settings import VisCoder

SALES = pd.DataFrame({"region": ["North", "South", "East", "West"], "revenue": [405, 295, 340, 212]})
#: Seconds a stopped generation may take past its budget: llama.cpp stops within a token, or
#: between two batches of the prompt (the loop cancels, run_cancellable waits for the worker).
SLACK_S = 5.0


def streamed(text: str, piece: int = 3) -> RepetitionWatcher:
    """The watcher fed `text` a few characters at a time, as tokens come."""
    watcher = RepetitionWatcher()
    for start in range(0, len(text), piece):
        if watcher.feed(text[start : start + piece]):
            break
    return watcher


# --------------------------------------------------------------------------- the loop detector


def test_the_same_line_six_times_running_is_a_loop_and_one_copy_is_kept():
    watcher = streamed("```python\nimport pandas as pd\n" + "plt.show()\n" * 40)
    assert watcher.looping and watcher.copies == 6 and watcher.repeated == "plt.show()"
    assert watcher.kept == "```python\nimport pandas as pd\nplt.show()\n"


def test_a_block_of_import_lines_repeated_is_a_loop():
    block = "import pandas as pd\nimport matplotlib.pyplot as plt\nimport seaborn as sns\n"
    watcher = streamed("```python\n" + block * 30)
    assert watcher.looping and watcher.copies == 4
    assert watcher.repeated == "import pandas as pd (and 2 more lines)"
    assert watcher.kept == "```python\n" + block


def test_one_line_that_goes_on_repeating_a_phrase_is_a_loop():
    watcher = streamed("```python\nplt.title('Revenue" + " Revenue by region" * 60)
    assert watcher.looping and watcher.repeated in " Revenue by region" * 3  # one period of the phrase
    assert len(watcher.kept) < 400


@pytest.mark.parametrize(
    "code",
    [
        GOOD_BAR,
        "```python\nfig, axes = plt.subplots(2, 2)\n"
        + "".join(f"axes[{i // 2}, {i % 2}].plot(x, y{i})\n" for i in range(4)),
        "```python\n" + "\n" * 12 + "plt.show()\n```",  # blank lines are not a loop
        "```python\ndata = [\n" + "    0,\n" * 9 + "]\n```",  # nor are items of a literal
        "```python\n" + "plt.show()\n" * 4 + "```",  # a line 4 times: a model that recovers does this
    ],
)
def test_code_that_repeats_a_little_is_let_through(code):
    assert not streamed(code).looping


def test_no_recorded_reply_that_finished_is_stopped_and_loops_that_ran_to_the_limit_are():
    """The offline model's replies recorded by the benchmarks: a reply that closed its code block
    (the model finished by itself) is never taken for a loop; some that ran to the token limit are."""
    import glob
    import json

    from viscoder_jupyter.backends.streaming import FenceWatcher

    finished = stopped_finished = ran_to_limit = stopped_at_limit = 0
    seen = set()
    for path in glob.glob(os.path.join(os.path.dirname(__file__), "..", "benchmarks", "replies", "*.jsonl")):
        for line in open(path, encoding="utf-8"):
            text = json.loads(line).get("text") or json.loads(line).get("reply")
            if not isinstance(text, str) or text in seen:
                continue
            seen.add(text)
            fence = FenceWatcher()
            fence.feed(text)
            looping = streamed(text).looping
            if fence.done:
                finished, stopped_finished = finished + 1, stopped_finished + looping
            else:
                ran_to_limit, stopped_at_limit = ran_to_limit + 1, stopped_at_limit + looping
    if not seen:
        pytest.skip("no recorded replies in benchmarks/replies")
    assert finished > 100 and stopped_finished == 0
    assert stopped_at_limit > 0


# --------------------------------------------------------------------------- the loop, replayed


class RecordingReplay(ReplayBackend):
    """The replay backend, keeping the conversation each reply was asked with."""

    def __init__(self, path):
        super().__init__(path)
        self.asked: list[list[dict]] = []

    async def async_generate(self, messages, on_text=None, *, sampling=None):
        self.asked.append([dict(m) for m in messages])
        return await super().async_generate(messages, on_text, sampling=sampling)


def test_a_loop_that_fails_is_named_in_the_feedback(tmp_path):
    """The model reads that its reply looped, or greedy decoding walks into the same loop again."""
    looping = "```python\nimport pandas as pd\nimport matplotlib.pyplot as plt\n" + "import numpy as np\n" * 50
    backend = RecordingReplay(write_replies(tmp_path / "r.jsonl", looping, GOOD_BAR))
    result = runtime.run("bar chart of revenue by region", {"sales": SALES}, VisCoder(), backend=backend)
    first, second = result.attempts
    assert first.error.ename == "NoFigure" and second.ok
    assert first.reply.count("import numpy as np") == 1
    feedback = backend.asked[1][-1]["content"]
    assert "Your reply was stopped: it repeated itself: `import numpy as np` came 6 times running" in feedback


# --------------------------------------------------------------------------- the real engine


@pytest.fixture(scope="module")
def gguf(offline_gguf) -> str:
    try:
        llamacpp_engine.import_llama_cpp()
    except BackendUnavailable:
        if os.environ.get("VISCODER_REQUIRE_OFFLINE_MODEL") == "1":
            pytest.fail("VISCODER_REQUIRE_OFFLINE_MODEL=1 but llama_cpp cannot be imported")
        pytest.skip("llama-cpp-python is not installed: pip install 'viscoder-jupyter[cpu]'")
    return str(offline_gguf)


#: A request whose reply is long whatever the machine's speed: 300 numbers to copy into a list,
#: one per line (about 1200 tokens; a recap such as range() cannot stand for them).
NUMBERS = [(7919 * k) % 9973 for k in range(1, 301)]
LONG = [
    {"role": "system", "content": "You are a helpful assistant that writes Python code."},
    {
        "role": "user",
        "content": "Write a Python code block that defines a list named `values` holding exactly these "
        "numbers, in this order, one number per line:\n" + " ".join(map(str, NUMBERS)),
    },
]


def run_attempts(backend, settings, messages, events):
    kernel = runtime.child_kernel()
    return runtime.run_sync(
        loop.async_run(
            "a long list",
            {"sales": SALES},
            settings,
            events.append,
            backend=backend,
            kernel=kernel,
            lock=runtime.kernel_lock(kernel),
            messages=messages,
        )
    )


@pytest.mark.slow
def test_a_reply_past_the_attempt_budget_is_stopped_and_fails_the_attempt(gguf):
    from viscoder_jupyter.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(gguf, max_new_tokens=3000)
    # Read the prompt once, so the attempt's budget goes to writing (the cache keeps the prompt).
    backend.max_new_tokens = 1
    asyncio.run(backend.async_generate(LONG))
    backend.max_new_tokens = 3000
    budget = 2.0
    events = []
    result = run_attempts(backend, VisCoder().with_overrides(retries=0, attempt_budget=budget), LONG, events)
    (attempt,) = result.attempts
    assert isinstance(attempt.error, ReplyOverBudget) and not result.ok, (attempt.error, attempt.reply[-300:])
    assert attempt.error.one_line().startswith(
        f"ReplyTooLong: The reply ran past the {budget:g} s budget for one attempt ("
    )
    assert "write shorter code" in attempt.error.feedback_text()
    assert attempt.generate_seconds <= budget + SLACK_S  # the generation was stopped, not waited out
    assert 0 < attempt.completion_tokens < 3000 and attempt.completion_tokens == sum(
        isinstance(e, TextStreamed) for e in events
    )
    (started,) = [e for e in events if isinstance(e, ReplyStarted)]
    assert started.prompt_tokens > 20 and started.new_tokens == 1 and started.budget == budget
    # The engine is free at once for the next request.
    backend.max_new_tokens = 40
    assert asyncio.run(backend.async_generate(LONG)).completion_tokens > 0


@pytest.mark.slow
def test_a_budget_spent_reading_the_prompt_stops_the_request_with_what_to_change(gguf):
    from viscoder_jupyter.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(gguf, max_new_tokens=50, reuse_cache=False)
    with pytest.raises(PromptOverBudget, match=r"Reading the prompt \(\d+ tokens\) took the whole 0.001 s budget"):
        run_attempts(backend, VisCoder().with_overrides(retries=0, attempt_budget=0.001), LONG, [])


# --------------------------------------------------------------------------- a model server


def wait_for(condition, seconds: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_a_servers_reply_past_the_budget_is_stopped_and_its_stream_closed(server):  # noqa: F811
    """The openai backend: the budget's stop closes the stream, which tells the server (vLLM,
    `viscoder serve`) to stop generating. A scripted server streams 200 tokens, 20 ms apart."""
    from viscoder_jupyter.backends.openai import OpenAIBackend

    server.reply = ["```python\n", *(f"values.append({i})\n" for i in range(200))]
    result = runtime.run(
        "a long list",
        {"sales": SALES},
        VisCoder().with_overrides(retries=0, attempt_budget=1.0),
        backend=OpenAIBackend(server.url, "m"),
    )
    (attempt,) = result.attempts
    assert isinstance(attempt.error, ReplyOverBudget) and attempt.generate_seconds <= 1.0 + SLACK_S
    assert 0 < attempt.completion_tokens < 150
    assert wait_for(lambda: server.seen.get("client_left")) and not server.seen.get("completed")


def test_a_servers_reply_that_loops_is_stopped_and_its_stream_closed(server):  # noqa: F811
    from viscoder_jupyter.backends.openai import OpenAIBackend

    server.reply = ["```python\n", "import matplotlib.pyplot as plt\n", *(["plt.plot([1, 2])\n"] * 200)]
    result = runtime.run(
        "a line",
        {"sales": SALES},
        VisCoder().with_overrides(retries=0, attempt_budget=0),
        backend=OpenAIBackend(server.url, "m"),
    )
    (attempt,) = result.attempts
    assert attempt.stopped == "it repeated itself: `plt.plot([1, 2])` came 6 times running"
    assert attempt.code.count("plt.plot") == 1
    assert wait_for(lambda: server.seen.get("client_left")) and not server.seen.get("completed")
