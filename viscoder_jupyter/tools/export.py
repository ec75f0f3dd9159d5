"""`viscoder export`: the dialogue log (`VisCoder.collect`) as fine-tuning data.

    viscoder export --format viscode -o viscode.jsonl          # VisCode-200K's layout
    viscoder export --format openai --accepted-only --lib seaborn --since 2026-01-01 -o chat.jsonl

Each exported record is one conversation: the system prompt, the first turn (the request and
the frame descriptors), where self-debug happened each failed attempt's code and its feedback
turn, then the model's final reply. Only requests that ended in a working plot are exported,
none the user discarded, none whose code the review flagged (unless `--include-flagged`);
`--accepted-only` keeps those the user kept (the magic's inserted cell ran without error, or the
sidebar's Accept / Insert). Identical conversations are written once. The output file is
private to the user (0600), as the log is.

Formats:
  viscode  {"uuid", "messages": [{"role", "content"}, ...], "language": "python"}: the layout of
           TIGER-Lab's VisCode datasets (ms-swift's "messages" form, which VisCoder was trained with)
  openai   {"messages": [...]}: OpenAI's chat fine-tuning JSONL
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from ..core.dialogue_log import KEPT, log_path, read_dialogues
from ..core.setting_flags import add_setting_flags
from ..core.settings import LIBRARIES

FORMATS = ("viscode", "openai")
ROLES = ("system", "user", "assistant")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="viscoder export",
        description="Write the dialogue log (VisCoder.collect) as fine-tuning data (JSONL).",
    )
    parser.add_argument("--format", choices=FORMATS, default="viscode", help="Output layout (default: %(default)s).")
    parser.add_argument("-o", "--output", help="File to write (default: standard output).")
    parser.add_argument(
        "--accepted-only",
        action="store_true",
        help="Only requests the user kept: the inserted cell ran without error, or Accept / Insert in the sidebar.",
    )
    parser.add_argument(
        "--include-flagged",
        action="store_true",
        help="Also requests whose code the review flagged (network, files, other programs...): read them first.",
    )
    parser.add_argument("--lib", choices=LIBRARIES, help="Only requests for this plotting library.")
    parser.add_argument("--since", help="Only requests from this date or time on (ISO 8601, UTC), e.g. 2026-01-31.")
    add_setting_flags(parser, ["collect_path"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    path = log_path(args)
    try:
        since = _moment(args.since) if args.since else None
    except ValueError:
        print(
            f"viscoder export: --since {args.since!r} is not a date; write it as 2026-01-31 or 2026-01-31T09:30.",
            file=sys.stderr,
        )
        return 2
    if not path.is_file():
        print(
            f"viscoder export: no dialogue log at {path}. Turn collecting on with %config VisCoder.collect = True "
            "(or the sidebar's setting), or name the log with --collect-path.",
            file=sys.stderr,
        )
        return 1
    dialogues, skipped = read_dialogues(path)
    chosen = select(
        dialogues, accepted_only=args.accepted_only, lib=args.lib, since=since, include_flagged=args.include_flagged
    )
    flagged = 0 if args.include_flagged else sum(1 for d in dialogues if d.get("flagged"))
    records, duplicates = export_records(chosen, args.format)
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if args.output:
        try:
            write_private(Path(args.output), lines)
        except OSError as exc:
            print(f"viscoder export: cannot write {args.output}: {exc.strerror or exc}.", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(lines)
    print(
        f"viscoder export: {_count(len(records), 'conversation')} ({args.format}) from "
        f"{_count(len(dialogues), 'logged request')}"
        f" ({len(dialogues) - len(chosen)} filtered out"
        + (f", of them {flagged} flagged by the review (--include-flagged exports them)" if flagged else "")
        + f", {duplicates} duplicates"
        + (f", {skipped} unreadable lines" if skipped else "")
        + ")"
        + (f" -> {args.output}" if args.output else ""),
        file=sys.stderr,
    )
    return 0


def select(
    dialogues: Iterable[dict],
    *,
    accepted_only=False,
    lib=None,
    since: datetime | None = None,
    include_flagged=False,
) -> list[dict]:
    """The dialogues worth training on: a working plot, not discarded, not flagged by the review
    (unless `include_flagged`), and the filters."""
    chosen = []
    for dialogue in dialogues:
        if not dialogue.get("ok") or dialogue.get("verdict") == "discarded":
            continue
        if dialogue.get("flagged") and not include_flagged:
            continue
        if accepted_only and dialogue.get("verdict") not in KEPT:
            continue
        if lib and dialogue.get("library") != lib:
            continue
        if since is not None and not _after(dialogue.get("time"), since):
            continue
        if conversation_problem(dialogue["messages"]) is None:
            chosen.append(dialogue)
    return chosen


def export_records(dialogues: Iterable[dict], format_: str) -> tuple[list[dict], int]:
    """One record per distinct conversation, in log order, and how many were duplicates."""
    seen, records, duplicates = set(), [], 0
    for dialogue in dialogues:
        messages = [{"role": m["role"], "content": m["content"]} for m in dialogue["messages"]]
        key = hashlib.sha256(json.dumps(messages, sort_keys=True).encode("utf-8")).hexdigest()
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        if format_ == "openai":
            records.append({"messages": messages})
        else:
            records.append({"uuid": dialogue["id"], "messages": messages, "language": "python"})
    return records, duplicates


def write_private(path: Path, text: str) -> None:
    """`text` into `path`, readable by its owner only (0600), also when the file was already there:
    the conversations hold the user's requests and code."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        os.fchmod(fd, 0o600)  # a file that was there keeps its mode through O_CREAT
        file.write(text)


def conversation_problem(messages) -> str | None:
    """Why `messages` is not a chat to train on (None when it is): roles, text, the ending."""
    if not isinstance(messages, list) or not messages:
        return "no messages"
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return f"a message without a known role: {message!r:.80}"
        if not isinstance(message.get("content"), str):
            return "a message without text"
    if messages[-1]["role"] != "assistant":
        return "it does not end with the model's reply"
    if not any(m["role"] == "user" for m in messages):
        return "no user turn"
    return None


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" + ("" if n == 1 else "s")


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _after(stamp, since: datetime) -> bool:
    try:
        return _moment(str(stamp)) >= since
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(main())
