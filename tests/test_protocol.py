"""The sidebar's comm messages are declared once in Python (frontends/protocol.py); the
TypeScript side (labextension/src/protocol.ts) must name the same messages and fields."""

import re
from pathlib import Path

import pytest

from viscoder_jupyter.frontends import protocol
from viscoder_jupyter.frontends.protocol import BadMessage, incoming, message, problems

TS = (Path(__file__).resolve().parents[1] / "labextension" / "src" / "protocol.ts").read_text(encoding="utf-8")
TS_TYPES = {
    "string": (str,),
    "number": (int, float),
    "boolean": (bool,),
    "IFixSettings": (dict,),
    "ErrorReason": (str,),
    "Verdict": (str,),
    "IReviewFinding[]": (list,),
}


def ts_interfaces(source: str) -> dict[str, dict[str, tuple[str, bool]]]:
    """interface name -> {field: (TypeScript type, optional)}, comments dropped."""
    source = re.sub(r"/\*.*?\*/|//[^\n]*", "", source, flags=re.DOTALL)
    found = {}
    for name, body in re.findall(r"export interface (\w+) \{(.*?)\n\}", source, flags=re.DOTALL):
        found[name] = {
            field: (kind.strip(), bool(optional))
            for field, optional, kind in re.findall(r"(\w+)(\?)?:\s*([^;]+);", body)
        }
    return found


def ts_union(source: str, name: str) -> list[str]:
    body = re.search(rf"export type {name} =(.*?);", source, flags=re.DOTALL).group(1)
    return [part.strip() for part in body.split("|") if part.strip()]


def ts_messages(union: str) -> dict[str, dict[str, str]]:
    """type -> {field: TypeScript type} of the interfaces in one union (FrontendMessage, KernelMessage)."""
    interfaces = ts_interfaces(TS)
    messages = {}
    for interface in ts_union(TS, union):
        fields = dict(interfaces[interface])
        kind, _ = fields.pop("type")
        messages[kind.strip("'")] = {field: kind for field, (kind, _) in fields.items()}
    return messages


@pytest.mark.parametrize(
    "union, declared", [("FrontendMessage", protocol.FRONTEND), ("KernelMessage", protocol.KERNEL)]
)
def test_typescript_names_the_same_messages_and_fields(union, declared):
    ts = ts_messages(union)
    assert sorted(ts) == sorted(declared)
    for kind, fields in declared.items():
        assert sorted(ts[kind]) == sorted(fields), kind
        for field, python_type in fields.items():
            assert python_type in TS_TYPES[ts[kind][field]], f"{kind}.{field}: {ts[kind][field]}"


def test_typescript_target_reasons_settings_and_final_messages_match():
    assert re.search(r"COMM_TARGET = '(\w+)'", TS).group(1) == protocol.TARGET
    reasons = re.search(r"export type ErrorReason =(.*?);", TS, flags=re.DOTALL).group(1)
    assert sorted(re.findall(r"'(\w+)'", reasons)) == sorted(protocol.ERROR_REASONS)
    assert sorted(ts_interfaces(TS)["IFixSettings"]) == sorted(protocol.SETTING_KEYS)
    verdicts = re.search(r"export type Verdict =(.*?);", TS, flags=re.DOTALL).group(1)
    assert re.findall(r"'(\w+)'", verdicts) == list(protocol.VERDICTS)
    final = re.search(r"function isFinal.*?\{(.*?)\n\}", TS, flags=re.DOTALL).group(1)
    assert sorted(re.findall(r"'(\w+)'", final)) == sorted(protocol.FINAL)


def test_parsing_the_typescript_notices_a_renamed_field():
    renamed = TS.replace("  ename: string;", "  errorName: string;")
    fields = ts_interfaces(renamed)["IAttemptFailed"]
    assert "errorName" in fields and "ename" not in fields


def test_messages_are_built_with_exactly_their_declared_fields():
    assert message("cancelled", id="r1") == {"type": "cancelled", "id": "r1"}
    with pytest.raises(ValueError, match="declared"):
        message("attempt", id="r1", number=1)  # `of` missing
    with pytest.raises(ValueError, match="reason"):
        message("error", id="r1", reason="oops", message="x")
    assert (
        problems(
            {
                "type": "done",
                "id": "r",
                "ok": True,
                "code": "",
                "attempts": 1,
                "seconds": 0,
                "error": "",
                "verified": "",
                "findings": [],
            }
        )
        == []
    )
    assert problems({"type": "attempt", "id": "r", "number": True, "of": "3"}) == [
        "attempt.number: bool, declared int",
        "attempt.of: str, declared int",
    ]


def test_the_review_finding_is_declared_alike_on_both_sides():
    fields = ts_interfaces(TS)["IReviewFinding"]
    assert {name: kind for name, (kind, _) in fields.items()} == {
        name: {int: "number", str: "string"}[kind] for name, kind in protocol.REVIEW_FINDING.items()
    }


FIX = {"type": "fix", "id": "r1", "source": "plot(df)", "traceback": "", "note": "", "settings": {}}


def test_incoming_messages_are_read_as_declared():
    assert incoming(FIX) == ("fix", {k: v for k, v in FIX.items() if k != "type"})
    assert incoming({"type": "cancel", "id": "r"}) == ("cancel", {"id": "r"})
    settings = {"retries": 10, "timeout": 3600, "lib": "Seaborn", "backend": "", "model": None, "samples": 0}
    assert incoming({**FIX, "settings": settings})[1]["settings"] == settings


@pytest.mark.parametrize(
    "data, said",
    [
        ({"type": "fix", "id": 7, "source": None}, ["fix: missing 'traceback'", "fix.id: int, declared str"]),
        ({**FIX, "extra": 1}, ["fix: undeclared 'extra'"]),
        ({**FIX, "source": "x" * 200_001}, ["fix.source: 200001 characters, more than 200000"]),
        ({**FIX, "id": "r" * 101}, ["fix.id: 101 characters, more than 100"]),
        ({**FIX, "settings": {"retries": 11}}, ["fix.settings.retries: 11, must be from 0 to 10"]),
        ({**FIX, "settings": {"retries": -1}}, ["fix.settings.retries: -1, must be from 0 to 10"]),
        ({**FIX, "settings": {"retries": True}}, ["fix.settings.retries: bool, declared int"]),
        ({**FIX, "settings": {"samples": 2.5}}, ["fix.settings.samples: float, declared int"]),
        ({**FIX, "settings": {"timeout": 0}}, ["fix.settings.timeout: 0, must be more than 0 and at most 3600"]),
        ({**FIX, "settings": {"timeout": 1e9}}, ["fix.settings.timeout: 1000000000.0, must be more than 0"]),
        ({**FIX, "settings": {"timeout": "10"}}, ["fix.settings.timeout: str, declared float"]),
        ({**FIX, "settings": {"lib": "ggplot"}}, ["fix.settings.lib: 'ggplot', not one of matplotlib"]),
        ({**FIX, "settings": {"model": "m" * 1001}}, ["fix.settings.model: 1001 characters, more than 1000"]),
        ({**FIX, "settings": {"api_key": "k"}}, ["fix.settings: unknown setting 'api_key'"]),
        ({**FIX, "settings": []}, ["fix.settings: list, declared dict"]),
        ({"type": "launch", "id": "x"}, ["Unknown message type 'launch'"]),
        (["fix"], ["a message is a JSON object, not list"]),
    ],
)
def test_a_message_that_is_not_as_declared_is_refused_saying_what_is_wrong(data, said):
    with pytest.raises(BadMessage) as refused:
        incoming(data)
    for words in said:
        assert any(problem.startswith(words) for problem in refused.value.problems), refused.value.problems
    # The refusal reaches the run that sent it when its id can be read, else no run.
    readable = isinstance(data, dict) and isinstance(data.get("id"), str) and len(data["id"]) <= 100
    assert refused.value.id == (data["id"] if readable else "")


def test_every_frontend_text_field_has_a_limit_and_every_range_a_setting():
    texts = {name for fields in protocol.FRONTEND.values() for name, kind in fields.items() if kind is str}
    assert texts <= set(protocol.TEXT_LIMITS)
    assert set(protocol.SETTING_RANGES) <= set(protocol.SETTING_KEYS)
