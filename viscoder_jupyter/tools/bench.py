"""`viscoder bench`: PandasPlotBench tasks through the same loop as `%%viscoder`.

    viscoder bench DATA_DIR [--protocol paper,ours] [--lib matplotlib] [--limit N] [--out DIR]

`--protocol paper` rebuilds VisCoder's evaluation protocol (the benchmark's own prompt,
descriptor cut at 4000 characters, `df = pd.read_csv(...)` dropped, `import numpy as np`
added when used, and only errors and missing figures fail an attempt); `--protocol ours` is
exactly what the magic sends, `ours-checks` adds the quality checks (off by default;
`ours-checks-no-request` without the request's), and `ours-no-data`, `ours-no-facts`,
`ours-no-repairs`, `ours-no-sampling`, `ours-bare` switch our additions off one at a time (or all). All run on
the same loop, child kernel and model; several protocols in one run alternate task by task
and share replies to identical conversations (`SharedReplies`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import runtime
from ..backends import get_backend
from ..backends.base import Backend, Reply
from ..core.checks import empty_problem
from ..core.context import describe_frames
from ..core.events import Notice, PlotResult
from ..core.prompt import first_turn
from ..core.setting_flags import add_setting_flags
from ..core.settings import VisCoder
from .paper_protocol import paper_extract, paper_feedback, paper_messages, paper_prepare

# `ours` and its ablations: each switches one of our additions to VisCoder's loop off, or on
# for the quality checks, off by default (measured: no gain on the offline 0.5B model, BENCHMARKS.md).
VARIANTS = {
    "ours": {},
    "ours-checks": {"checks": True},
    "ours-checks-no-request": {"checks": True, "request_checks": False},
    "ours-no-data": {"data_feedback": False},
    "ours-no-facts": {"runtime_facts": False},
    "ours-no-repairs": {"repairs": False},
    "ours-no-sampling": {"samples": 0},
    "ours-bare": {
        "checks": False,
        "request_checks": False,
        "data_feedback": False,
        "runtime_facts": False,
        "repairs": False,
        "samples": 0,
    },
}
PROTOCOLS = ("paper", *VARIANTS)


def variant_overrides(protocol: str) -> dict | None:
    """A variant's settings; `ours-no-A-no-B` switches off both additions (an ablation of one
    addition under another's: `ours-no-sampling-no-facts` against `ours-no-sampling`). None: unknown."""
    if protocol in VARIANTS:
        return VARIANTS[protocol]
    parts = protocol.removeprefix("ours").split("-no-")
    if not protocol.startswith("ours-no-") or parts[0] or not all(f"ours-no-{p}" in VARIANTS for p in parts[1:]):
        return None
    return {k: v for p in parts[1:] for k, v in VARIANTS[f"ours-no-{p}"].items()}


INSTRUCTIONS = {
    "full": "task__plot_description",
    "short": "_task__plot_description_short",
    "single": "_task__plot_description_short_single",
}


@dataclass
class Task:
    id: int
    fields: dict
    csv: Path

    def description(self, instruction: str) -> str:
        return self.fields[INSTRUCTIONS[instruction]].strip()

    def request_parts(self, instruction: str) -> list[str]:
        """Description and style as the benchmark sends them: labelled, unstripped."""
        return [
            self.fields[INSTRUCTIONS[instruction]],
            self.fields["task__plot_style"] if instruction == "full" else "",
        ]

    def style(self, instruction: str) -> str:
        # The short variants stand alone in the benchmark; only the full task has a style part.
        return self.fields["task__plot_style"].strip() if instruction == "full" else ""


def load_tasks(folder: Path, ids: set[int] | None = None, limit: int | None = None) -> list[Task]:
    tasks = []
    for line in (folder / "tasks.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        fields = json.loads(line)
        csv = folder / fields["data_csv"]
        if (ids is None or fields["id"] in ids) and csv.is_file():
            tasks.append(Task(fields["id"], fields, csv))
    return tasks[:limit] if limit else tasks


# ---- our protocol ----------------------------------------------------------------------


def ours_request(task: Task, instruction: str) -> str:
    description = re.sub(r"^Plot Description:\s*", "", task.description(instruction))
    return "\n\n".join(filter(None, [description, task.style(instruction)]))


# ---- running ---------------------------------------------------------------------------


class SharedReplies(Backend):
    """Greedy decoding gives one reply per conversation: protocols that send the same
    conversation (ours and its ablations share every first turn) get the reply it got the
    first time, with the generation time measured then. Kept in a JSONL file, so a later
    run with more variants pays only for conversations not seen yet. The inner backend's
    identity (model, dtype, reply length) is part of the key: one file may hold replies
    of several models, and a run never takes another model's.
    """

    name = "shared"

    def __init__(self, inner: Backend, path: Path | None):
        self.inner, self.path = inner, path
        self.memo: dict[str, Reply] = {}
        self.hits = 0
        if path is not None and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                self.memo[row["key"]] = Reply(
                    row["text"], row["prompt_tokens"], row["completion_tokens"], row["seconds"]
                )

    @classmethod
    def from_settings(cls, settings):  # pragma: no cover - built by run_bench only
        raise NotImplementedError

    def key(self, messages, sampling=None) -> str:
        scope = self.inner.identity()
        asked = [scope, messages, asdict(sampling)] if sampling else [scope, messages]
        return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()

    async def async_prepare(self) -> None:
        await self.inner.async_prepare()

    def identity(self) -> str:
        return self.inner.identity()

    async def async_generate(self, messages, on_text=None, *, sampling=None) -> Reply:
        key = self.key(messages, sampling)
        if key in self.memo:
            self.hits += 1
            reply = self.memo[key]
            if on_text is not None:
                on_text(reply.text)
            return reply
        started = time.perf_counter()
        if sampling is None:
            reply = await self.inner.async_generate(messages, on_text)
        else:
            reply = await self.inner.async_generate(messages, on_text, sampling=sampling)
        reply = Reply(reply.text, reply.prompt_tokens, reply.completion_tokens, time.perf_counter() - started)
        self.memo[key] = reply
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(
                    json.dumps(
                        {
                            "key": key,
                            "text": reply.text,
                            "prompt_tokens": reply.prompt_tokens,
                            "completion_tokens": reply.completion_tokens,
                            "seconds": reply.seconds,
                        }
                    )
                    + "\n"
                )
        return reply


def protocol_settings(protocol: str, settings: VisCoder) -> VisCoder:
    if protocol == "paper":  # traceback-only feedback, the paper's own code preparation
        return settings.with_overrides(checks=False, data_feedback=False, runtime_facts=False, samples=0)
    return settings.with_overrides(**variant_overrides(protocol))


async def run_task(
    task: Task, protocol: str, settings: VisCoder, instructs: dict, instruction: str, backend, kernel, on_event=None
) -> tuple[PlotResult, float]:
    import pandas as pd

    df = pd.read_csv(task.csv)
    started = time.perf_counter()
    settings = protocol_settings(protocol, settings)
    if protocol == "paper":
        result = await runtime.async_run(
            task.description(instruction),
            {"df": df},
            settings,
            backend=backend,
            kernel=kernel,
            on_event=on_event,
            messages=paper_messages(task, df, instructs, settings.lib, instruction),
            extract=paper_extract,
            prepare=paper_prepare,
            feedback=paper_feedback,
            judge=False,  # the harness fails an attempt only by an error or a missing figure
        )
    else:
        # The product's first turn, with the task's description and style as its numbered parts.
        messages = first_turn(
            task.request_parts(instruction), describe_frames({"df": df}, settings.frame_budget), settings.lib
        )
        result = await runtime.async_run(
            ours_request(task, instruction),
            {"df": df},
            settings,
            on_event,
            backend=backend,
            kernel=kernel,
            messages=messages,
        )
    return result, time.perf_counter() - started


def notice_printer():
    """An event handler that prints each distinct notice once, as it comes, on stderr (running
    without the sandbox is said before the first task's first attempt, not at every task)."""
    seen: set[str] = set()

    def hear(event) -> None:
        if isinstance(event, Notice) and event.message not in seen:
            seen.add(event.message)
            line = f"VisCoder: note: {event.message}."
            print(("\n" if sys.stderr.isatty() else "") + line, file=sys.stderr, flush=True)

    return hear


def empty_figure(attempt, request: str) -> bool:
    """Drew, but nothing is on its axes: judged for every protocol, the paper's included."""
    return attempt.drew and empty_problem(attempt.figure_facts, attempt.plotly_json) is not None


def attempt_rows(task: Task, protocol: str, result: PlotResult, wall: float) -> list[dict]:
    return [
        {
            "task": task.id,
            "protocol": protocol,
            "attempt": a.number,
            "ok": a.ok,
            "error": a.error.ename if a.error else None,
            "error_line": a.error.one_line() if a.error else None,
            "generate_s": round(a.generate_seconds, 3),
            "execute_s": round(a.execute_seconds, 3),
            "prompt_tokens": a.prompt_tokens,
            "completion_tokens": a.completion_tokens,
            "drew": a.drew,
            "candidates": a.candidates,
            "empty_figure": empty_figure(a, result.request),
            "repairs": a.repairs,
            "task_wall_s": round(wall, 3),
            "code": a.code,
            "reply": a.reply,
        }
        for a in result.attempts
    ]


async def run_bench(
    tasks: list[Task],
    protocols: list[str],
    settings: VisCoder,
    instructs: dict,
    instruction: str,
    out: Path,
    reply_cache: Path | None = None,
) -> dict[str, list[tuple[Task, PlotResult, float]]]:
    from .bench_report import Progress, save_png

    backend = get_backend(settings)
    if settings.backend != "replay":  # recorded replies come in order, whatever was asked
        backend = SharedReplies(backend, reply_cache)
    kernel = runtime.child_kernel(settings)
    outcomes: dict[str, list] = {p: [] for p in protocols}
    files = {p: (out / p / "results.jsonl").open("w", encoding="utf-8") for p in protocols}
    replies = {p: (out / p / "replies.jsonl").open("w", encoding="utf-8") for p in protocols}
    progress = Progress(len(tasks), protocols)
    hear = notice_printer()
    try:
        for task in tasks:
            for protocol in protocols:
                result, wall = await run_task(
                    task, protocol, settings, instructs, instruction, backend, kernel, on_event=hear
                )
                outcomes[protocol].append((task, result, wall))
                for row in attempt_rows(task, protocol, result, wall):
                    files[protocol].write(json.dumps(row) + "\n")
                for attempt in result.attempts:
                    replies[protocol].write(json.dumps({"reply": attempt.reply}) + "\n")
                if result.ok and result.images:
                    save_png(out / protocol / "plots" / f"{task.id}.png", result.images[0])
                files[protocol].flush()
                progress.update(protocol, task, result, wall)
    finally:
        for f in (*files.values(), *replies.values()):
            f.close()
        progress.close()
    return outcomes


#: The settings `viscoder bench` takes as flags (their help, types and choices are the settings').
SETTING_FLAGS = ("lib", "backend", "model", "replay", "retries", "timeout", "max_new_tokens")
#: Where bench's defaults are not the settings' own: the rounds and the time per attempt are
#: VisCoder's protocol, pinned whatever the magic's defaults become; None leaves the setting
#: to VisCoder() (environment, then built in) and out of the report's list of options.
SETTING_DEFAULTS = {
    "retries": 3,
    "timeout": 10.0,
    "backend": None,
    "model": None,
    "replay": None,
    "max_new_tokens": None,
}


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="viscoder bench", description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder with tasks.jsonl, csv/ and instructs.json")
    parser.add_argument(
        "--protocol", default="ours", help=f"comma-separated, among: {', '.join(PROTOCOLS)} (e.g. 'paper,ours')"
    )
    add_setting_flags(parser, SETTING_FLAGS, overrides=SETTING_DEFAULTS)
    parser.add_argument("--limit", type=int, help="first N tasks only")
    parser.add_argument("--ids", help="comma-separated task ids")
    parser.add_argument("--instruction", default="full", choices=sorted(INSTRUCTIONS))
    parser.add_argument("--out", type=Path, default=Path("bench-out"), help="output folder")
    parser.add_argument(
        "--reply-cache",
        type=Path,
        help="JSONL of replies per conversation, shared by protocols and runs (default: OUT/reply-cache.jsonl)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    from .bench_report import add_shared_times, print_table, summarize, write_html

    parser = make_parser()
    args = parser.parse_args(argv)

    protocols = [p.strip() for p in args.protocol.split(",") if p.strip()]
    if not protocols or any(p != "paper" and variant_overrides(p) is None for p in protocols):
        parser.error(f"--protocol must be among {', '.join(PROTOCOLS)}, or ours-no-A-no-B combining those")
    ids = {int(i) for i in args.ids.split(",")} if args.ids else None
    if not (args.data / "tasks.jsonl").is_file():
        parser.error(f"{args.data} holds no tasks.jsonl")
    tasks = load_tasks(args.data, ids, args.limit)
    instructs = json.loads((args.data / "instructs.json").read_text(encoding="utf-8"))
    settings = VisCoder().with_overrides(**{name: getattr(args, name) for name in SETTING_FLAGS})
    for protocol in protocols:
        (args.out / protocol / "plots").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    reply_cache = args.reply_cache or args.out / "reply-cache.jsonl"
    outcomes = runtime.run_sync(
        run_bench(tasks, protocols, settings, instructs, args.instruction, args.out, reply_cache)
    )
    summaries = {}
    for protocol, rows in outcomes.items():
        summaries[protocol] = summarize(rows, settings.retries, empty_figure)
    add_shared_times(outcomes, summaries)
    for protocol in outcomes:
        (args.out / protocol / "summary.json").write_text(json.dumps(summaries[protocol], indent=2))
    write_html(args.out / "report.html", outcomes, summaries, vars(args))
    print_table(summaries, settings, time.perf_counter() - started, file=sys.stdout)
    print(f"results in {args.out}/ (report.html, */results.jsonl, */summary.json)")
    return 0
