"""The sidebar's comm protocol through a real kernel: open, fix, stream, cancel, refuse."""

from __future__ import annotations

import base64
import uuid

import pytest
from helpers import GOOD_BAR, key_error, write_replies
from jupyter_client.manager import start_new_kernel

PNG = b"\x89PNG\r\n\x1a\n"
FINAL = {"done", "cancelled", "error"}
SLEEPS = "```python\nimport time\nimport matplotlib.pyplot as plt\ntime.sleep(600)\nplt.plot([1, 2])\n```"
USER_CODE = "import matplotlib.pyplot as plt\nplt.bar(sales['Region'], sales['revenue'])\nplt.show()"
NAMES = "sorted(k for k in globals() if not k.startswith('_'))"
USER_TRACEBACK = "KeyError                                  Traceback (most recent call last)\nKeyError: 'Region'"


class CommClient:
    """The frontend's end of the `viscoder` comm, spoken over jupyter_client."""

    def __init__(self, kc):
        self.kc = kc
        self.comm_id = uuid.uuid4().hex

    def open(self) -> dict:
        self._shell("comm_open", {"comm_id": self.comm_id, "target_name": "viscoder", "data": {}})
        return self.next()

    def send(self, data: dict) -> None:
        self._shell("comm_msg", {"comm_id": self.comm_id, "data": data})

    def fix(self, run_id: str, **fields) -> None:
        self.send(
            {
                "type": "fix",
                "id": run_id,
                "source": USER_CODE,
                "traceback": USER_TRACEBACK,
                "note": "",
                "settings": {},
                **fields,
            }
        )

    def next(self, timeout: float = 120) -> dict:
        while True:
            msg = self.kc.get_iopub_msg(timeout=timeout)
            if msg["msg_type"] == "comm_close" and msg["content"]["comm_id"] == self.comm_id:
                return {"type": "closed"}
            if msg["msg_type"] == "comm_msg" and msg["content"]["comm_id"] == self.comm_id:
                return msg["content"]["data"]

    def until_final(self, timeout: float = 120) -> list[dict]:
        seen = []
        while not seen or seen[-1]["type"] not in FINAL:
            seen.append(self.next(timeout))
        return seen

    def _shell(self, msg_type: str, content: dict) -> None:
        self.kc.shell_channel.send(self.kc.session.msg(msg_type, content))


@pytest.fixture
def kernel(tmp_path):
    """A real kernel with the extension loaded, the replay backend and a `sales` frame."""
    km, kc = start_new_kernel(kernel_name="python3")

    def setup(*replies, frames: bool = True, load: bool = True):
        replay = write_replies(tmp_path / "replies.jsonl", *replies)
        code = (
            f"%load_ext viscoder_jupyter\n%config VisCoder.backend = 'replay'\n%config VisCoder.replay = {replay!r}\n"
            if load
            else ""
        ) + (
            "import pandas as pd\nsales = pd.DataFrame({'region': ['N', 'S', 'W'], 'revenue': [1.0, 2.0, 3.0]})\n"
            if frames
            else ""
        )
        reply = kc.execute_interactive(code, timeout=120, output_hook=lambda msg: None)
        assert reply["content"]["status"] == "ok", reply["content"]
        return CommClient(kc)

    yield setup, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def user_value(kc, expression: str):
    found = {}
    reply = kc.execute_interactive(
        f"print(repr({expression}))",
        timeout=60,
        output_hook=lambda m: found.update(m["content"]) if m["msg_type"] == "stream" else None,
    )
    assert reply["content"]["status"] == "ok"
    return found.get("text", "").strip()


def test_a_fix_streams_its_attempts_and_proposes_working_code(kernel):
    setup, kc = kernel
    client = setup(key_error(), GOOD_BAR)
    before = user_value(kc, NAMES)
    assert client.open()["type"] == "ready"
    client.fix("run-1")
    events = client.until_final()
    kinds = [e["type"] for e in events]
    assert all(e["id"] == "run-1" for e in events)
    assert kinds[0] == "status" and kinds[-1] == "done"
    assert [e["number"] for e in events if e["type"] == "attempt"] == [1, 2]
    assert "text" in kinds
    (failed,) = [e for e in events if e["type"] == "attempt_failed"]
    assert failed["ename"] == "KeyError" and "Region" in failed["error"]
    (figure,) = [e for e in events if e["type"] == "figure"]
    assert base64.b64decode(figure["png"]).startswith(PNG)
    done = events[-1]
    assert done["ok"] and done["attempts"] == 2 and "df = sales" in done["code"]
    assert done["verified"].startswith("ran and drew 1 figure with 3 vertical bars")  # what is known, said
    # The proposal is only a proposal: nothing ran in the user's kernel.
    assert user_value(kc, NAMES) == before and "'sales'" in before


def test_cancel_stops_the_model_and_the_child_and_the_next_fix_works(kernel):
    setup, _ = kernel
    client = setup(SLEEPS, GOOD_BAR)
    client.open()
    client.fix("slow", settings={"retries": 0, "timeout": 900})
    seen = []
    while not any("running the code" in e.get("message", "") for e in seen):  # the child is sleeping now
        seen.append(client.next())
    assert "time.sleep(600)" in "".join(e["text"] for e in seen if e["type"] == "text")  # all of it, flushed
    client.fix("second")
    assert client.next() == {
        "type": "error",
        "id": "second",
        "reason": "busy",
        "message": "A fix is already running for this notebook: wait for it or cancel it.",
    }
    client.send({"type": "cancel", "id": "slow"})
    assert client.until_final()[-1] == {"type": "cancelled", "id": "slow"}
    # The child was interrupted (else this attempt would queue behind a 600 s sleep).
    client.fix("third", settings={"retries": 0})
    done = client.until_final()[-1]
    assert done["type"] == "done" and done["ok"] and done["id"] == "third"


def test_no_dataframe_is_said_plainly(kernel):
    setup, _ = kernel
    client = setup(GOOD_BAR, frames=False)
    client.open()
    client.fix("r")
    error = client.next()
    assert error["type"] == "error" and error["reason"] == "no_frames" and "No DataFrame" in error["message"]


@pytest.mark.parametrize(
    "fields, reason, message",
    [
        ({"settings": {"retries": -1}}, "bad_request", "fix.settings.retries: -1, must be from 0 to 10"),
        ({"source": "  "}, "bad_request", "The cell is empty"),
        ({"traceback": ""}, "bad_request", "Nothing to fix"),
    ],
)
def test_bad_requests_are_refused_with_the_reason(kernel, fields, reason, message):
    setup, _ = kernel
    client = setup(GOOD_BAR)
    client.open()
    client.fix("r", **fields)
    (error,) = [e for e in client.until_final() if e["type"] == "error"]
    assert error["reason"] == reason and message in error["message"]


def test_unknown_messages_and_a_missing_extension(kernel):
    setup, _ = kernel
    client = setup(GOOD_BAR, load=False)
    assert client.open() == {"type": "closed"}  # no target until the extension is loaded
    client = setup(GOOD_BAR)
    assert client.open()["type"] == "ready"
    client.send({"type": "launch", "id": "x"})
    error = client.next()
    assert error["reason"] == "bad_request" and "Unknown message type 'launch'" in error["message"]


def test_every_setting_the_sidebar_offers_reaches_the_kernel(monkeypatch):
    import json
    from pathlib import Path

    from viscoder_jupyter.core.settings import VisCoder
    from viscoder_jupyter.frontends.comm import SETTING_KEYS, overrides_from
    from viscoder_jupyter.frontends.sidebar_settings import tighten_only

    monkeypatch.delenv("VISCODER_REQUIRE_SANDBOX", raising=False)

    schema = json.loads((Path(__file__).parents[1] / "labextension" / "schema" / "sidebar.json").read_text())
    assert set(SETTING_KEYS) == set(schema["properties"])
    chosen = {
        "backend": "replay",
        "model": "",
        "lib": "seaborn",
        "retries": 1,
        "samples": 0,
        "timeout": 5.0,
        "sandbox": "off",
        "collect": True,
        "unknown": 1,
    }
    kernel = VisCoder(sandbox="off", collect=True, allowed_backends=["replay"])  # nothing the sidebar sends loosens
    accepted, refused = tighten_only(overrides_from(chosen), kernel)
    settings = kernel.with_overrides(**accepted)
    assert refused == []
    assert (settings.lib, settings.samples, settings.sandbox, settings.retries) == ("seaborn", 0, "off", 1)
    assert settings.collect is True and settings.backend == "replay"


def test_the_sidebar_may_only_tighten_the_kernels_settings(monkeypatch):
    from viscoder_jupyter.core.settings import VisCoder
    from viscoder_jupyter.frontends.sidebar_settings import tighten_only

    monkeypatch.delenv("VISCODER_REQUIRE_SANDBOX", raising=False)
    kernel = VisCoder(sandbox="auto", collect=False, model="mine.gguf", backend="llamacpp")
    asked = {"sandbox": "off", "collect": True, "model": "/elsewhere/theirs.gguf", "backend": "openai", "lib": "plotly"}
    accepted, refused = tighten_only(asked, kernel)
    assert accepted == {"lib": "plotly"} and len(refused) == 4
    assert [why.split(" was not used")[0] for why in refused] == [
        "The sidebar's sandbox 'off'",
        "The sidebar's 'collect dialogues'",
        "The sidebar's model '/elsewhere/theirs.gguf'",
        "The sidebar's backend 'openai'",
    ]
    assert "allowed_models" in refused[2] and "allowed_backends" in refused[3]  # how the kernel's owner allows more
    assert tighten_only({"backend": "nope"}, kernel)[0] == {}  # an unknown one is no exception
    # Stricter, the kernel's own, or what its configuration lists: accepted.
    same = {"sandbox": "required", "collect": False, "model": "mine.gguf", "backend": "LlamaCpp"}
    assert tighten_only(same, kernel) == (same, [])
    listed = VisCoder(model="mine.gguf", allowed_models=["theirs.gguf"], allowed_backends=["openai"])
    assert tighten_only({"model": "theirs.gguf", "backend": "openai"}, listed)[1] == []
    assert tighten_only({"sandbox": "auto"}, VisCoder(sandbox="required"))[0] == {}
    # VISCODER_REQUIRE_SANDBOX=1 is the kernel's 'required', whatever its setting says.
    monkeypatch.setenv("VISCODER_REQUIRE_SANDBOX", "1")
    accepted, (why,) = tighten_only({"sandbox": "auto"}, VisCoder(sandbox="off"))
    assert accepted == {} and "'required'" in why


def test_refused_settings_are_said_and_the_kernels_own_are_used(kernel, sandbox_works, tmp_path):
    """Through a real kernel: the sidebar asks for no sandbox, logging on and another model; the
    panel hears a notice for each before the first attempt, and the run is the kernel's own."""
    setup, kc = kernel
    client = setup(GOOD_BAR)
    log = tmp_path / "dialogues.jsonl"
    kc.execute_interactive(f"%config VisCoder.collect_path = {str(log)!r}", timeout=30, output_hook=lambda m: None)
    client.open()
    client.fix("r", settings={"sandbox": "off", "collect": True, "model": "/elsewhere/theirs.gguf", "retries": 0})
    events = client.until_final()
    kinds = [e["type"] for e in events]
    notices = [e["message"] for e in events if e["type"] == "notice"]
    assert len(notices) == 3 and kinds.index("notice") < kinds.index("attempt")
    said = " ".join(notices)
    assert "sandbox 'off' was not used" in said and "'collect dialogues' was not used" in said
    assert "model '/elsewhere/theirs.gguf' was not used" in said
    assert events[-1]["type"] == "done" and events[-1]["ok"]
    assert user_value(kc, "__import__('viscoder_jupyter').runtime._kernel.sandboxed") == "True"
    assert not log.exists()  # logging stayed off


def test_the_sidebar_schema_offers_what_the_settings_accept():
    """Each property of labextension/schema/sidebar.json has its setting's type and choices
    (an empty choice or null keeps the kernel's own configuration)."""
    import json
    from pathlib import Path

    from traitlets import Bool, Enum, Float, Int

    from viscoder_jupyter.backends import backend_names
    from viscoder_jupyter.core.settings import VisCoder

    schema = json.loads((Path(__file__).parents[1] / "labextension" / "schema" / "sidebar.json").read_text())
    traits = VisCoder.class_traits(config=True)
    for name, prop in schema["properties"].items():
        trait = traits[name]
        kinds = set(prop["type"] if isinstance(prop["type"], list) else [prop["type"]]) - {"null"}
        expected = {Int: "integer", Float: "number", Bool: "boolean"}.get(type(trait), "string")
        assert kinds == {expected}, name
        offered = [choice["const"] for choice in prop.get("oneOf", []) if choice["const"] != ""]
        if isinstance(trait, Enum):
            assert offered == list(trait.values), name
        elif name == "backend":
            assert set(offered) <= set(backend_names()), offered
        else:
            assert not offered, name


def test_every_message_a_fix_sends_is_as_declared(kernel):
    """Through a real kernel: each message of a run (a failed attempt, a working one, a refusal)
    has exactly the fields frontends/protocol.py declares, of their types."""
    from viscoder_jupyter.frontends.protocol import problems

    setup, _ = kernel
    client = setup(key_error(), GOOD_BAR)
    sent = [client.open()]
    client.fix("run-1")
    sent += client.until_final()
    client.send({"type": "launch", "id": "x"})
    sent.append(client.next())
    assert {m["type"] for m in sent} >= {
        "ready",
        "status",
        "attempt",
        "text",
        "attempt_failed",
        "figure",
        "done",
        "error",
    }
    assert [p for m in sent for p in problems(m)] == []


@pytest.mark.parametrize(
    "data, run_id, said",
    [
        ({"settings": {"retries": 50}}, "r1", "fix.settings.retries: 50, must be from 0 to 10"),
        ({"settings": {"timeout": -5}}, "r1", "fix.settings.timeout: -5, must be more than 0 and at most 3600"),
        ({"settings": {"lib": 3}}, "r1", "fix.settings.lib: int, declared str"),
        ({"settings": {"api_key": "sk-x"}}, "r1", "unknown setting 'api_key'"),
        ({"source": "x" * 200_001}, "r1", "fix.source: 200001 characters, more than 200000"),
        ({"id": 7}, "", "fix.id: int, declared str"),
        ({"note": None}, "r1", "fix.note: NoneType, declared str"),
        ({"extra": True}, "r1", "fix: undeclared 'extra'"),
    ],
)
def test_a_fix_not_as_declared_gets_an_error_reply_and_nothing_runs(kernel, data, run_id, said):
    setup, kc = kernel
    client = setup(GOOD_BAR)
    client.open()
    client.send(
        {
            "type": "fix",
            "id": "r1",
            "source": USER_CODE,
            "traceback": USER_TRACEBACK,
            "note": "",
            "settings": {},
            **data,
        }
    )
    error = client.next()
    assert error["type"] == "error" and error["reason"] == "bad_request" and error["id"] == run_id
    assert said in error["message"] and error["message"].startswith("The kernel refused the sidebar's message")
    # Nothing ran: the one recorded reply is still there for the next, good fix.
    client.fix("r2")
    done = client.until_final()[-1]
    assert done["type"] == "done" and done["ok"] and done["id"] == "r2"


def test_messages_that_are_not_objects_or_not_known_get_an_error_reply(kernel):
    setup, _ = kernel
    client = setup(GOOD_BAR)
    client.open()
    for data, said in [
        (["fix"], "a message is a JSON object, not list"),
        ({"type": "cancel", "id": "r", "now": 1}, "cancel: undeclared 'now'"),
        ({"type": "cancel"}, "cancel: missing 'id'"),
    ]:
        client.send(data)
        error = client.next()
        assert error["type"] == "error" and error["reason"] == "bad_request" and said in error["message"], error


FLAGGED_FIX = (
    "```python\nimport matplotlib.pyplot as plt\nsales.to_csv('backup.csv')\n"
    "plt.bar(sales['region'], sales['revenue'])\nplt.show()\n```"
)


def test_the_done_message_carries_what_the_review_flagged(kernel):
    from viscoder_jupyter.frontends.protocol import problems

    setup, _ = kernel
    client = setup(FLAGGED_FIX)
    client.open()
    client.fix("r", settings={"retries": 0})
    done = client.until_final()[-1]
    assert problems(done) == []
    assert done["ok"] and "sales.to_csv('backup.csv')" in done["code"]
    assert done["findings"] == [
        {
            "line": done["code"].splitlines().index("sales.to_csv('backup.csv')") + 1,
            "text": "sales.to_csv('backup.csv')",
            "why": "calls .to_csv(...) with a destination: it writes a file",
        }
    ]
