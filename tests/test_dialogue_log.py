"""The opt-in dialogue log (VisCoder.collect): one record per finished request, holding the
conversation exactly as the model received it, and the user's verdicts, on real kernels."""

from __future__ import annotations

import copy
import json
import os
import stat

import pandas as pd
import pytest
from helpers import GOOD_BAR, key_error, write_replies
from jupyter_client.manager import start_new_kernel
from test_comm import CommClient

from viscoder_jupyter import runtime
from viscoder_jupyter.backends.replay import ReplayBackend
from viscoder_jupyter.core.dialogue_log import read_dialogues
from viscoder_jupyter.core.events import Notice
from viscoder_jupyter.core.settings import VisCoder
from viscoder_jupyter.core.withheld_values import placeholder_descriptor

SALES = (
    "import pandas as pd\nsales = pd.DataFrame({'region': ['North', 'South', 'West'], 'revenue': [11.5, 7.25, 3.0]})\n"
)


def log_of(path) -> tuple[list[dict], list[dict]]:
    """(dialogue lines, verdict lines) of a log file, read as plain JSON lines."""
    entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [e for e in entries if e["kind"] == "dialogue"], [e for e in entries if e["kind"] == "verdict"]


@pytest.fixture
def received(monkeypatch):
    """What the replay backend itself was sent (beneath the log's recorder): [(messages, reply)]."""
    calls = []
    original = ReplayBackend.async_generate

    async def spy(self, messages, on_text=None, **options):
        sent = copy.deepcopy(messages)
        reply = await original(self, messages, on_text, **options)
        calls.append((sent, reply.text))
        return reply

    monkeypatch.setattr(ReplayBackend, "async_generate", spy)
    return calls


# ---- in-process (a bare shell; the child kernel is real) --------------------------------------------
def test_a_self_debug_request_logs_the_conversation_the_backend_received(shell, tmp_path, received):
    log = tmp_path / "log" / "dialogues.jsonl"
    ip = shell(key_error(), GOOD_BAR, collect=True, collect_path=str(log), collect_values=True)
    ip.run_cell_magic("viscoder", "sales", "bar chart of revenue by region")

    (record,), verdicts = log_of(log)
    assert verdicts == [] and len(received) == 2
    last_sent, last_reply = received[-1]
    assert record["messages"] == [*last_sent, {"role": "assistant", "content": last_reply}]
    roles = [m["role"] for m in record["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant"]  # the failed attempt and its feedback
    assert "KeyError" in record["messages"][3]["content"] and '"North"' in record["messages"][1]["content"]
    assert record["ok"] and "df = sales" in record["code"] and record["library"] == "matplotlib"
    assert [a["ok"] for a in record["attempts"]] == [False, True] and "KeyError" in record["attempts"][0]["error"]
    assert record["model"]["backend"] == "replay" and record["origin"] == "magic" and record["values"] is True
    # Private to the user, in a folder of its own.
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600 and stat.S_IMODE(os.stat(log.parent).st_mode) == 0o700


def test_without_values_the_descriptors_hold_type_placeholders(shell, tmp_path, received):
    log = tmp_path / "dialogues.jsonl"
    ip = shell(key_error(), GOOD_BAR, collect=True, collect_path=str(log), collect_values=False)
    ip.run_cell_magic("viscoder", "sales", "bar chart of revenue by region")

    (record,), _ = log_of(log)
    sent = json.dumps(received[-1][0])
    logged = json.dumps(record["messages"])
    for value in ("North", "South", "10.0", "7.5"):  # the frame's values reached the model ...
        assert value in sent
        assert value not in logged  # ... and not the log
    assert "What the data says" in sent and "<withheld: facts from the live frames>" in logged
    user = record["messages"][1]["content"]
    assert "Column names and types: region: object, revenue: float64" in user  # the shape stays
    assert '"region":{"0":"<object>","1":"<object>"' in user and '"revenue":{"0":"<float64>"' in user
    assert record["values"] is False and len(record["messages"]) == len(received[-1][0]) + 1


# A frame whose values are easy to find: texts (one with a space, one the head does not show) and numbers.
PRIVATE = pd.DataFrame(
    {
        "island": ["Zanzibar", "Bora Bora", "Kalimantan", "Zanzibar", "Bora Bora", "Tasmania"],
        "revenue": [1234.5, 98765.25, 4321.75, 555.5, 777.25, 8080.5],
    }
)
PRIVATE_VALUES = ("Zanzibar", "Bora Bora", "Kalimantan", "Tasmania", "1234.5", "98765.25", "4321.75")
USES_A_VALUE_AS_A_COLUMN = (
    "```python\nimport matplotlib.pyplot as plt\nplt.bar(trips['island'], trips['Zanzibar'])\nplt.show()\n```"
)
GOOD_ISLAND_BAR = (
    "```python\nimport matplotlib.pyplot as plt\n"
    "kept = trips[trips['island'] != 'Tasmania'].groupby('island')['revenue'].sum()\n"
    "plt.bar(kept.index, kept.values)\nplt.axhline(1234.5)\nplt.show()\n```"
)


def test_by_default_no_value_of_the_frames_is_logged(shell, tmp_path, received):
    """Values off is the default: the request, the code, the traceback and the feedback hold the
    frame's names, never its values (which the model itself did see)."""
    log = tmp_path / "dialogues.jsonl"
    ip = shell(USES_A_VALUE_AS_A_COLUMN, GOOD_ISLAND_BAR, collect=True, collect_path=str(log))
    ip.user_ns["trips"] = PRIVATE
    ip.run_cell_magic("viscoder", "trips", "bar chart of revenue by island, Bora Bora and Zanzibar but not Tasmania")

    line = log.read_text(encoding="utf-8")
    (record,), _ = log_of(log)
    assert record["ok"] and record["values"] is False and "KeyError" in record["attempts"][0]["error"]
    sent = json.dumps(received)
    for value in PRIVATE_VALUES:
        assert value in sent  # the model saw it ...
        assert value not in line, value  # ... the log does not hold it
    assert record["request"] == "bar chart of revenue by island, <object> and <object> but not <object>"
    assert "trips['<object>']" in record["attempts"][0]["error"] or "'<object>'" in record["attempts"][0]["error"]
    assert "plt.axhline(<float64>)" in record["code"] and "trips['island']" in record["code"]  # names stay


def test_a_fixed_cell_and_its_traceback_are_logged_without_the_values(tmp_path):
    log = tmp_path / "dialogues.jsonl"
    replay = write_replies(tmp_path / "r.jsonl", GOOD_ISLAND_BAR)
    settings = VisCoder(backend="replay", replay=replay, collect=True, collect_path=str(log))
    source = (
        "import matplotlib.pyplot as plt\nplt.bar(trips['island'], trips['revenue'] / 98765.25)\nplt.ylim(0, 4321.75)"
    )
    traceback = "KeyError                                  Traceback (most recent call last)\nKeyError: 'Kalimantan'"
    job = runtime.fix_job(source, traceback, "", settings, frames={"trips": PRIVATE})
    assert runtime.run_sync(runtime.async_run_job(job)).ok

    line = log.read_text(encoding="utf-8")
    assert not [value for value in PRIVATE_VALUES if value in line]
    assert "KeyError: '<object>'" in line and "trips['revenue'] / <float64>" in line


def test_flagged_code_is_recorded_as_flagged(shell, tmp_path):
    log = tmp_path / "dialogues.jsonl"
    flagged = (
        "```python\nimport matplotlib.pyplot as plt\nsales.to_csv('backup.csv')\n"
        "plt.bar(sales['region'], sales['revenue'])\nplt.show()\n```"
    )
    ip = shell(flagged, collect=True, collect_path=str(log), retries=0)
    ip.run_cell_magic("viscoder", "sales", "bar chart of revenue by region")
    (record,), _ = log_of(log)
    assert record["flagged"] is True
    assert [(f["line"], f["text"]) for f in record["findings"]] == [(2, "sales.to_csv('backup.csv')")]


def test_collect_is_off_by_default_and_writes_nothing(shell, tmp_path):
    log = tmp_path / "dialogues.jsonl"
    ip = shell(GOOD_BAR, collect_path=str(log))
    ip.run_cell_magic("viscoder", "sales", "bar chart of revenue by region")
    assert not log.exists()


def test_the_inserted_cell_run_without_error_is_the_verdict_kept(shell, tmp_path):
    log = tmp_path / "dialogues.jsonl"
    ip = shell(GOOD_BAR, GOOD_BAR, collect=True, collect_path=str(log))
    ip.run_cell_magic("viscoder", "sales", "bar chart of revenue by region")
    inserted = ip.rl_next_input
    assert inserted.startswith("# %%viscoder: bar chart")
    ip.run_cell(inserted.replace("plt.show()", "plt.show(); 1/0"))  # edited and failing: no verdict
    ip.run_cell("\n".join("# " + line for line in inserted.splitlines()))  # commented out: runs nothing
    assert log_of(log)[1] == []
    ip.run_cell(inserted)
    (record,), (verdict,) = log_of(log)
    assert verdict["id"] == record["id"] and verdict["verdict"] == "kept"
    ip.run_cell(inserted)  # once is enough
    assert len(log_of(log)[1]) == 1
    dialogues, skipped = read_dialogues(log)
    assert [d["verdict"] for d in dialogues] == ["kept"] and skipped == 0


def test_a_log_that_cannot_be_written_is_said_and_the_plot_still_comes(tmp_path):
    from viscoder_jupyter import generate_plot

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    seen = []
    with pytest.warns(UserWarning, match="dialogue log could not be written"):  # what generate_plot's caller sees
        result = generate_plot(
            pd.DataFrame({"region": ["N", "S"], "revenue": [1.0, 2.0]}),
            "bar chart of revenue by region",
            backend="replay",
            replay=write_replies(tmp_path / "r.jsonl", GOOD_BAR),
            collect=True,
            collect_path=str(blocker / "dialogues.jsonl"),  # a folder inside a file: cannot exist
            on_event=seen.append,
        )
    assert result.ok
    assert any(isinstance(e, Notice) and "dialogue log could not be written" in e.message for e in seen)


def test_placeholders_cover_split_heads_and_labelled_rows():
    frame = pd.DataFrame({("a", "x"): [1, 2], ("a", "y"): ["p", "q"]}, index=["secret-row", "other-row"])
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    from viscoder_jupyter.core.context import describe_frame

    text = placeholder_descriptor(describe_frame(frame), frame)
    assert "secret-row" not in text and '"p"' not in text and "<int64>" in text and "<object>" in text
    labelled = pd.DataFrame({"v": [3.5]}, index=pd.Index(["Alice"], name="who"))
    text = placeholder_descriptor(describe_frame(labelled), labelled)
    assert "Alice" not in text and "3.5" not in text and "<float64>" in text


# ---- real kernels --------------------------------------------------------------------------------
@pytest.fixture
def kernel():
    km, kc = start_new_kernel(kernel_name="python3")
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def execute(kc, code: str, timeout: float = 600) -> tuple[dict, str]:
    """Run a cell; its reply and its printed text."""
    printed = []
    reply = kc.execute_interactive(
        code,
        timeout=timeout,
        output_hook=lambda m: printed.append(m["content"]["text"]) if m["msg_type"] == "stream" else None,
    )
    assert reply["content"]["status"] == "ok", reply["content"]
    return reply, "".join(printed)


def test_the_real_engine_in_a_kernel_is_logged_with_what_it_received(kernel, offline_gguf, tmp_path):
    """The offline GGUF through llama.cpp in a real kernel: the record's messages are what the
    engine itself was handed (a spy on the engine, beneath the log's recorder), then its reply."""
    log = tmp_path / "dialogues.jsonl"
    execute(
        kernel,
        "%load_ext viscoder_jupyter\n"
        f"%config VisCoder.backend = 'llamacpp'\n%config VisCoder.model = {str(offline_gguf)!r}\n"
        f"%config VisCoder.collect = True\n%config VisCoder.collect_path = {str(log)!r}\n"
        "%config VisCoder.collect_values = True\n%config VisCoder.samples = 0\n" + SALES,
    )
    execute(
        kernel,
        "import copy\nfrom viscoder_jupyter.backends.llamacpp import LlamaCppBackend\n_received = []\n"
        "_original = LlamaCppBackend._generate_sync\n"
        "def _spy(self, loaded, messages, on_text, cancel, sampling=None):\n"
        "    sent = copy.deepcopy(messages)\n"
        "    reply = _original(self, loaded, messages, on_text, cancel, sampling)\n"
        "    _received.append({'messages': sent, 'reply': reply.text})\n"
        "    return reply\n"
        "LlamaCppBackend._generate_sync = _spy\n",
    )
    execute(kernel, "%%viscoder sales --retries 1\nbar chart of revenue by region")
    _, printed = execute(kernel, "import json; print(json.dumps(_received))")
    calls = json.loads(printed)

    (record,), _ = log_of(log)
    assert len(calls) == len(record["attempts"]) >= 1
    final = record["messages"][-1]
    assert final["role"] == "assistant"
    (call,) = [c for c in calls if c["reply"] == final["content"]][-1:]
    assert record["messages"][:-1] == call["messages"]
    assert "North" in record["messages"][1]["content"]  # values kept, as asked
    assert record["model"]["identity"].startswith("llamacpp:") and offline_gguf.name in record["model"]["identity"]
    print(json.dumps(record, indent=2))  # shown with -s: one real record


def test_the_sidebar_verdicts_are_logged_through_the_comm(kernel, tmp_path):
    log = tmp_path / "dialogues.jsonl"
    replay = write_replies(tmp_path / "replies.jsonl", GOOD_BAR, GOOD_BAR, GOOD_BAR)
    execute(
        kernel,
        f"%load_ext viscoder_jupyter\n%config VisCoder.backend = 'replay'\n%config VisCoder.replay = {replay!r}\n"
        f"%config VisCoder.collect = True\n%config VisCoder.collect_path = {str(log)!r}\n" + SALES,
    )
    client = CommClient(kernel)
    assert client.open()["type"] == "ready"
    pressed = {"run-accept": "accept", "run-discard": "discard", "run-insert": "insert"}
    for run_id, button in pressed.items():
        # The kernel collects (the sidebar may not turn it on: test_comm); its own setting agrees.
        client.fix(run_id, settings={"collect": True})
        final = client.until_final()[-1]
        assert final["type"] == "done", final
        client.send({"type": "verdict", "id": run_id, "verdict": button})
    client.send({"type": "verdict", "id": "unknown-run", "verdict": "accept"})  # ignored, no reply
    execute(kernel, "pass")  # the verdicts were handled before this cell ran

    dialogues, verdicts = log_of(log)
    assert [d["origin"] for d in dialogues] == ["sidebar"] * 3
    assert [(v["id"], v["verdict"]) for v in verdicts] == [
        (dialogues[0]["id"], "accepted"),
        (dialogues[1]["id"], "discarded"),
        (dialogues[2]["id"], "inserted"),
    ]
