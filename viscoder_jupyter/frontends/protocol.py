"""The sidebar's comm messages, declared once: each message's type and fields.

Every message is a dict told apart by "type". labextension/src/protocol.ts mirrors these
declarations and tests/test_protocol.py checks that both sides name the same messages and
fields (and that SETTING_KEYS are the properties of labextension/schema/sidebar.json).

    frontend -> kernel: fix (run a fix of a cell), cancel
    kernel -> frontend: ready (once, when the comm opens), status, attempt, text (the reply as
        it streams, batched), attempt_failed, figure (base64 PNG of a working attempt), and one
        of done, cancelled, error to end a run
"""

from __future__ import annotations

from typing import Any

#: The comm target the extension registers in the kernel.
TARGET = "viscoder"

#: Settings the sidebar may send with a fix (labextension/schema/sidebar.json); each is a
#: `VisCoder` setting, and an empty value means "the kernel's own configuration".
SETTING_KEYS = ("backend", "model", "lib", "retries", "samples", "timeout", "sandbox")

#: Why a run was refused or failed (an "error" message's `reason`).
ERROR_REASONS = ("no_frames", "busy", "bad_request", "backend", "internal")

#: Frontend to kernel: type -> {field: Python type}.
FRONTEND: dict[str, dict[str, type]] = {
    "fix": {"id": str, "source": str, "traceback": str, "note": str, "settings": dict},
    "cancel": {"id": str},
}

#: Kernel to frontend: type -> {field: Python type} (a float field takes an int too).
KERNEL: dict[str, dict[str, type]] = {
    "ready": {"version": str},
    "status": {"id": str, "message": str},
    "attempt": {"id": str, "number": int, "of": int},
    "text": {"id": str, "number": int, "text": str},
    "attempt_failed": {"id": str, "number": int, "code": str, "ename": str, "evalue": str, "error": str},
    "figure": {"id": str, "number": int, "png": str},
    # verified: what is known of the final attempt's figure, in words ("" when none drew)
    "done": {"id": str, "ok": bool, "code": str, "attempts": int, "seconds": float, "error": str, "verified": str},
    "cancelled": {"id": str},
    "error": {"id": str, "reason": str, "message": str},
}

#: Kernel messages that end a run.
FINAL = ("done", "cancelled", "error")


def message(type_: str, **fields: Any) -> dict[str, Any]:
    """A kernel -> frontend message with exactly its declared fields."""
    declared = KERNEL[type_]
    if set(fields) != set(declared):
        raise ValueError(f"{type_!r} message: fields {sorted(fields)}, declared {sorted(declared)}")
    if type_ == "error" and fields["reason"] not in ERROR_REASONS:
        raise ValueError(f"unknown error reason {fields['reason']!r}")
    return {"type": type_, **fields}


def problems(data: dict, declared: dict[str, dict[str, type]] = KERNEL) -> list[str]:
    """What in `data` does not match its declaration (its fields, their types); [] when all does."""
    kind = data.get("type")
    if kind not in declared:
        return [f"unknown message type {kind!r}"]
    fields = declared[kind]
    found = [f"{kind}: missing {name!r}" for name in fields if name not in data]
    found += [f"{kind}: undeclared {name!r}" for name in data if name != "type" and name not in fields]
    for name, expected in fields.items():
        allowed = (int, float) if expected is float else expected
        value = data.get(name)
        if name in data and (not isinstance(value, allowed) or (expected is not bool and isinstance(value, bool))):
            found.append(f"{kind}.{name}: {type(value).__name__}, declared {expected.__name__}")
    return found


def incoming(data: Any) -> tuple[str | None, dict[str, Any]]:
    """A frontend message's type and its declared fields, read leniently: a missing or empty
    string field is "", settings that are not a dict are {}; an unknown type gives no fields."""
    if not isinstance(data, dict):
        return None, {}
    kind = data.get("type")
    if kind not in FRONTEND:
        return kind, {"id": "" if data.get("id") is None else str(data["id"])}
    fields: dict[str, Any] = {}
    for name, expected in FRONTEND[kind].items():
        value = data.get(name)
        if expected is dict:
            fields[name] = value if isinstance(value, dict) else {}
        else:
            fields[name] = "" if value is None else str(value)
    return kind, fields
