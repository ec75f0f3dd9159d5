"""The sidebar's comm messages are declared once in Python (frontends/protocol.py); the
TypeScript side (labextension/src/protocol.ts) must name the same messages and fields."""

import re
from pathlib import Path

import pytest

from viscoder_jupyter.frontends import protocol
from viscoder_jupyter.frontends.protocol import incoming, message, problems

TS = (Path(__file__).resolve().parents[1] / "labextension" / "src" / "protocol.ts").read_text(encoding="utf-8")
TS_TYPES = {
    "string": (str,),
    "number": (int, float),
    "boolean": (bool,),
    "IFixSettings": (dict,),
    "ErrorReason": (str,),
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
            }
        )
        == []
    )
    assert problems({"type": "attempt", "id": "r", "number": True, "of": "3"}) == [
        "attempt.number: bool, declared int",
        "attempt.of: str, declared int",
    ]


def test_incoming_messages_are_read_leniently():
    assert incoming({"type": "fix", "id": 7, "source": None, "settings": "x"}) == (
        "fix",
        {"id": "7", "source": "", "traceback": "", "note": "", "settings": {}},
    )
    assert incoming({"type": "cancel", "id": "r"}) == ("cancel", {"id": "r"})
    assert incoming({"type": "launch"}) == ("launch", {"id": ""})
