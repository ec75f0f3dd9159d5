"""The opt-in dialogue log (`VisCoder.collect`): each finished request's conversation with the
model, as the model received it, appended to a local JSONL file for fine-tuning data.

VisCoder learned to fix its code from execution-feedback dialogues (VisCode-200K); every
request that ends in a plot the user keeps is one more, on real data. One line per event:

    {"kind": "dialogue", "id": ..., "messages": [...], "code": ..., "attempts": [...], ...}
    {"kind": "verdict", "id": <a dialogue's id>, "verdict": "kept" | "accepted" | ...}

Verdicts come later (the user runs the inserted cell, clicks Accept) and are appended as their
own lines, never written into the dialogue's line: appending is safe from several kernels at
once and a crash loses at most the line being written. `read_dialogues` joins them (the last
verdict for an id wins). The file is created readable by its owner only, and nothing is sent
anywhere.

What it keeps by default is less than the model saw: unless `collect_values` is on, the frames'
values are replaced by type placeholders everywhere in a record (withheld_values.py). A request
whose answer the review flagged is recorded with `"flagged": true` and its findings;
`viscoder export` leaves it out unless asked.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .events import Done, Event, Notice, PlotResult
from .withheld_values import ValueScrubber, without_values

VERSION = 1
#: What the user did with a result: the magic's inserted cell ran without error ("kept"); the
#: sidebar's buttons ("accepted": replaced the cell, "inserted": added below, "discarded").
VERDICTS = ("kept", "accepted", "inserted", "discarded")
KEPT = ("kept", "accepted", "inserted")  # verdicts that say the user kept the plot
_write_lock = threading.Lock()


def default_log_path() -> Path:
    """viscoder/dialogues.jsonl in the Jupyter data folder (JUPYTER_DATA_DIR moves it)."""
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "viscoder" / "dialogues.jsonl"


def log_path(settings: Any) -> Path:
    """`settings.collect_path`, or the default; `~` is the user's home."""
    chosen = str(getattr(settings, "collect_path", "") or "").strip()
    return Path(chosen).expanduser() if chosen else default_log_path()


# ---- writing ---------------------------------------------------------------------------------
def append_line(path: Path, entry: dict) -> None:
    """One JSON line appended with one write; the file (and its folder) made private if new."""
    data = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _write_lock:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            _lock_file(fd)
            size = os.fstat(fd).st_size
            if size and os.lseek(fd, size - 1, os.SEEK_SET) >= 0 and os.read(fd, 1) != b"\n":
                data = b"\n" + data  # a line cut short by a crash stays alone
            os.write(fd, data)
        finally:
            os.close(fd)  # also releases the lock


def _lock_file(fd: int) -> None:
    # Other kernels may append to the same file: one writer at a time (where the OS can tell).
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)
    except (ImportError, OSError):
        pass


def append_verdict(path: Path, record_id: str, verdict: str) -> None:
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}; known: {', '.join(VERDICTS)}")
    append_line(path, {"kind": "verdict", "version": VERSION, "id": record_id, "verdict": verdict, "time": _now()})


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---- recording a request ---------------------------------------------------------------------
class RecordingBackend:
    """A backend that keeps a copy of each conversation it is sent and the reply it gave
    (the loop extends its message list in place after a failure, so copies are taken)."""

    def __init__(self, backend, calls: list[dict]):
        self._backend = backend
        self._calls = calls

    def __getattr__(self, name: str):
        return getattr(self._backend, name)

    async def async_generate(self, messages, on_text=None, **options):
        sent = copy.deepcopy(list(messages))
        reply = await self._backend.async_generate(messages, on_text, **options)
        self._calls.append({"messages": sent, "reply": reply.text})
        return reply


class DialogueRecorder:
    """Records one request: wrap its backend (`backend`) and its events (`events`); at `Done`,
    before any front end hears of it, the record is appended and `on_written(id)` told."""

    def __init__(self, request: str, frames: dict, settings: Any, origin: str, on_written: Callable[[str], None]):
        self.request = request
        self.frames = frames
        self.settings = settings
        self.origin = origin
        self.on_written = on_written
        self.calls: list[dict] = []
        self._backend = None

    def backend(self, backend):
        self._backend = backend
        return RecordingBackend(backend, self.calls)

    def events(self, on_event: Callable[[Event], None] | None) -> Callable[[Event], None]:
        forward = on_event or (lambda event: None)

        def on_event_recorded(event: Event) -> None:
            if isinstance(event, Done):
                try:
                    path = log_path(self.settings)
                    record = self.record(event.result)
                    append_line(path, record)
                    self.on_written(record["id"])
                except Exception as exc:  # noqa: BLE001 (the user's plot matters more than the log)
                    forward(Notice(f"the dialogue log could not be written ({type(exc).__name__}: {exc})"))
            forward(event)

        return on_event_recorded

    def record(self, result: PlotResult) -> dict:
        final = result.final
        sent = _sent_for(final.reply, self.calls) if final is not None else []
        messages = [*sent, {"role": "assistant", "content": final.reply}] if final is not None else []
        keep = bool(self.settings.collect_values)
        scrub = (lambda text: text) if keep else ValueScrubber(self.frames)
        if not keep:
            messages = without_values(messages, self.frames, self.settings.frame_budget, scrub)
        findings = [{"line": f.line, "text": scrub(f.text), "why": scrub(f.why)} for f in result.findings]
        return {
            "kind": "dialogue",
            "version": VERSION,
            "id": uuid.uuid4().hex,
            "time": _now(),
            "origin": self.origin,
            "request": scrub(self.request),
            "library": self.settings.lib,
            "model": self._model(),
            "values": keep,
            "messages": messages,
            "code": scrub(result.code),
            "ok": result.ok,
            # The review flagged the answer's code: kept for the record, left out of `viscoder export`
            # unless asked (--include-flagged), so flagged code does not become training data unseen.
            "flagged": bool(findings),
            "findings": findings,
            "attempts": [
                {
                    "number": a.number,
                    "ok": a.ok,
                    "error": scrub(a.error.one_line()) if a.error else "",
                    "candidates": a.candidates,
                }
                for a in result.attempts
            ],
        }

    def _model(self) -> dict:
        identity = ""
        try:
            identity = self._backend.identity() if self._backend is not None else ""
        except Exception:  # noqa: BLE001 (identity is a label; a backend that cannot say is still logged)
            pass
        return {"backend": self.settings.backend, "model": self.settings.model, "identity": identity}


def _sent_for(reply: str, calls: list[dict]) -> list[dict]:
    """The conversation that produced `reply` (the last call that did: a sampled round makes several)."""
    for call in reversed(calls):
        if call["reply"] == reply:
            return call["messages"]
    return calls[-1]["messages"] if calls else []


# ---- reading -----------------------------------------------------------------------------------
def read_dialogues(path: Path) -> tuple[list[dict], int]:
    """The log's dialogues in order, each with its latest verdict (None without one), and how
    many lines were skipped: not JSON (a write cut short) or not a record of this log."""
    dialogues: list[dict] = []
    verdicts: dict[str, str] = {}
    skipped = 0
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if isinstance(entry, dict) and entry.get("kind") == "verdict" and entry.get("verdict") in VERDICTS:
                verdicts[str(entry.get("id"))] = entry["verdict"]
            elif (
                isinstance(entry, dict) and entry.get("kind") == "dialogue" and isinstance(entry.get("messages"), list)
            ):
                dialogues.append(entry)
            else:
                skipped += 1
    return [{**d, "verdict": verdicts.get(str(d.get("id")))} for d in dialogues], skipped
