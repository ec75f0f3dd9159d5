"""The sidebar's comm messages, declared once: each message's type and fields.

Every message is a dict told apart by "type". labextension/src/protocol.ts mirrors these
declarations and tests/test_protocol.py checks that both sides name the same messages and
fields (and that SETTING_KEYS are the properties of labextension/schema/sidebar.json).

    frontend -> kernel: fix (run a fix of a cell), cancel, verdict (what the user did with a
        proposal: for the dialogue log, when settings.collect is on; no reply)
    kernel -> frontend: ready (once, when the comm opens), status, notice (a line the panel keeps:
        a setting of the sidebar the kernel refused), download (a model being
        downloaded, with bytes, rate and time left), attempt, text (the reply as
        it streams, batched), attempt_failed, figure (base64 PNG of a working attempt), and one
        of done, cancelled, error to end a run
"""

from __future__ import annotations

from typing import Any

#: The comm target the extension registers in the kernel.
TARGET = "viscoder"

#: Settings the sidebar may send with a fix (labextension/schema/sidebar.json); each is a
#: `VisCoder` setting, and an empty value means "the kernel's own configuration". They may only
#: tighten it (sidebar_settings.py): a refused one is said in a "notice".
SETTING_KEYS = ("backend", "model", "lib", "retries", "samples", "timeout", "attempt_budget", "sandbox", "collect")

#: Why a run was refused or failed (an "error" message's `reason`).
ERROR_REASONS = ("no_frames", "busy", "bad_request", "backend", "internal")

#: Bounds on what the frontend sends, checked before anything runs (`incoming`): the longest text
#: of each string field (a cell and its traceback are the big ones), of a text setting, and the
#: range of each numeric setting (low, high; a timeout must be more than its low end).
TEXT_LIMITS = {"id": 100, "source": 200_000, "traceback": 200_000, "note": 4_000, "verdict": 20}
SETTING_TEXT_LIMIT = 1_000
SETTING_RANGES = {"retries": (0, 10), "samples": (0, 10), "timeout": (0, 3600), "attempt_budget": (0, 3600)}

#: A "verdict" message's `verdict`: the proposal's button the user pressed.
VERDICTS = ("accept", "insert", "discard")

#: Frontend to kernel: type -> {field: Python type}.
FRONTEND: dict[str, dict[str, type]] = {
    "fix": {"id": str, "source": str, "traceback": str, "note": str, "settings": dict},
    "cancel": {"id": str},
    "verdict": {"id": str, "verdict": str},
}

#: Frontend fields that take one of a few values: type -> {field: choices}.
FIELD_CHOICES: dict[str, dict[str, tuple[str, ...]]] = {"verdict": {"verdict": VERDICTS}}

#: Kernel to frontend: type -> {field: Python type} (a float field takes an int too).
KERNEL: dict[str, dict[str, type]] = {
    "ready": {"version": str},
    "status": {"id": str, "message": str},
    # what the user must know of the run, kept in the panel's log: e.g. a refused setting
    "notice": {"id": str, "message": str},
    # a model download before the first attempt: bytes so far and in all (0: not known yet),
    # bytes/s (0: not measured yet) and seconds left (-1: not known yet)
    "download": {"id": str, "what": str, "done": int, "total": int, "rate": float, "eta": float},
    "attempt": {"id": str, "number": int, "of": int},
    "text": {"id": str, "number": int, "text": str},
    "attempt_failed": {"id": str, "number": int, "code": str, "ename": str, "evalue": str, "error": str},
    "figure": {"id": str, "number": int, "png": str},
    # verified: what is known of the final attempt's figure, in words ("" when none drew);
    # findings: what the review flagged in `code` (core/code_review.py), [] when nothing: the
    # sidebar shows each and asks the user to confirm they read the code before Accept
    "done": {
        "id": str,
        "ok": bool,
        "code": str,
        "attempts": int,
        "seconds": float,
        "error": str,
        "verified": str,
        "findings": list,
    },
    "cancelled": {"id": str},
    "error": {"id": str, "reason": str, "message": str},
}

#: One line the review flagged, as a "done" message's `findings` lists it (IReviewFinding).
REVIEW_FINDING: dict[str, type] = {"line": int, "text": str, "why": str}

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


class BadMessage(ValueError):
    """A frontend message that does not match its declaration; `id` is its run id where one could
    be read, so that the refusal reaches the run that sent it."""

    def __init__(self, problems: list[str], id: str = ""):
        super().__init__("; ".join(problems))
        self.problems = problems
        self.id = id


def incoming(data: Any) -> tuple[str, dict[str, Any]]:
    """A frontend message's type and fields, checked against its declaration: every field there and
    of its type, no other, each text within TEXT_LIMITS, a field with choices one of them, and the
    fix's settings known, of their setting's type, within SETTING_RANGES. Raises BadMessage."""
    if not isinstance(data, dict):
        raise BadMessage([f"a message is a JSON object, not {type(data).__name__}"])
    run_id = data.get("id")
    run_id = run_id if isinstance(run_id, str) and len(run_id) <= TEXT_LIMITS["id"] else ""
    kind = data.get("type")
    if kind not in FRONTEND:
        raise BadMessage([f"Unknown message type {kind!r}"], run_id)
    found = problems(data, FRONTEND)
    for name, expected in FRONTEND[kind].items():
        value = data.get(name)
        if expected is str and isinstance(value, str):
            if len(value) > TEXT_LIMITS[name]:
                found.append(f"{kind}.{name}: {len(value)} characters, more than {TEXT_LIMITS[name]}")
            elif name in FIELD_CHOICES.get(kind, {}) and value not in FIELD_CHOICES[kind][name]:
                found.append(f"{kind}.{name}: {value!r}, not one of {', '.join(FIELD_CHOICES[kind][name])}")
    if kind == "fix" and isinstance(data.get("settings"), dict):
        found += setting_problems(data["settings"])
    if found:
        raise BadMessage(found, run_id)
    return kind, {name: data[name] for name in FRONTEND[kind]}


def setting_problems(settings: dict) -> list[str]:
    """What is wrong with a fix's settings: unknown keys, values not of their `VisCoder` setting's
    type, text too long, numbers out of SETTING_RANGES. None or "" (the kernel's own) always pass."""
    from traitlets import Bool, Enum, Float, Int

    from ..core.settings import VisCoder

    traits = VisCoder.class_traits(config=True)
    found = []
    for key, value in settings.items():
        if key not in SETTING_KEYS:
            found.append(f"fix.settings: unknown setting {str(key)[:40]!r}")
            continue
        if value is None or value == "":
            continue
        trait = traits[key]
        expected = bool if isinstance(trait, Bool) else int if isinstance(trait, Int) else float
        expected = expected if isinstance(trait, (Bool, Int, Float)) else str
        allowed = (int, float) if expected is float else expected
        if not isinstance(value, allowed) or (expected is not bool and isinstance(value, bool)):
            found.append(f"fix.settings.{key}: {type(value).__name__}, declared {expected.__name__}")
        elif expected is str and len(value) > SETTING_TEXT_LIMIT:
            found.append(f"fix.settings.{key}: {len(value)} characters, more than {SETTING_TEXT_LIMIT}")
        elif isinstance(trait, Enum) and value.lower() not in [str(v).lower() for v in trait.values]:
            found.append(f"fix.settings.{key}: {value!r}, not one of {', '.join(map(str, trait.values))}")
        elif key in SETTING_RANGES:
            low, high = SETTING_RANGES[key]
            if not (low < value <= high if key == "timeout" else low <= value <= high):
                bound = f"more than {low} and at most {high}" if key == "timeout" else f"from {low} to {high}"
                found.append(f"fix.settings.{key}: {value!r}, must be {bound}")
    return found
