"""What `viscoder bench` prints and writes: progress, summary.json, report.html."""

from __future__ import annotations

import base64
import html
import statistics
import sys
from collections import Counter
from pathlib import Path


def save_png(path: Path, png: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)


class Progress:
    """One line on stderr, rewritten per task: position and running pass rate per protocol."""

    def __init__(self, total: int, protocols: list[str]):
        self.total = total
        self.done = {p: 0 for p in protocols}
        self.passed = {p: 0 for p in protocols}
        self.tty = sys.stderr.isatty()

    def update(self, protocol: str, task, result, wall: float) -> None:
        self.done[protocol] += 1
        self.passed[protocol] += result.ok
        rates = "  ".join(f"{p} {100 * self.passed[p] / max(1, self.done[p]):5.1f}%" for p in self.done)
        state = f"ok after {len(result.attempts)}" if result.ok else f"failed x{len(result.attempts)}"
        line = (
            f"[{self.done[protocol]:>3}/{self.total}] pass: {rates} | task {task.id} {protocol}: {state} ({wall:.1f} s)"
        )
        print(("\r\x1b[2K" if self.tty else "") + line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _p90(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 3)


def request_covered(attempt, request: str, task=None) -> bool:
    """The figure passes the request check (request_checks.py), judged for every protocol with
    checks on or off: the request with the task's style part (the paper's protocol sends it
    apart from the description), against the columns of the task's CSV when there is one."""
    from ..core.request_checks import follows_request

    fields = getattr(task, "fields", None) or {}
    style = str(fields.get("task__plot_style") or "").strip()
    if style and request.strip() == str(fields.get("task__plot_description") or "").strip():
        request = f"{request.strip()}\n\n{style}"
    return follows_request(request, attempt.code, _task_columns(task), attempt.figure_facts, attempt.plotly_json)


_COLUMNS: dict = {}


def _task_columns(task):
    """{'df': {column: values}} of a benchmark task's CSV (read once per file), or None."""
    csv = getattr(task, "csv", None)
    if csv is None:
        return None
    if csv not in _COLUMNS:
        import pandas as pd

        from ..core.request_checks import frame_columns

        try:
            frame = pd.read_csv(csv)
        except Exception:
            _COLUMNS[csv] = None
        else:
            fields = getattr(task, "fields", {}) or {}
            words = " ".join(str(v) for k, v in fields.items() if k.startswith(("task__", "_task__")))
            _COLUMNS[csv] = frame_columns({"df": frame}, words)
    return _COLUMNS[csv]


def summarize(rows: list[tuple], retries: int, empty=lambda attempt, request: False, covered=request_covered) -> dict:
    """Pass rate after each round (the paper's Normal, then self-debug rounds), times, errors.

    Execution pass rate as in the paper: the code ran and showed a figure (a figure failing
    one of our checks still counts). `empty(attempt, request)` tells a figure with nothing
    drawn, for the rate of non-empty figures; `covered(attempt, request, task)` a figure that
    passes the request check, for the request coverage. Time to a plot: generation and
    execution of every attempt of a task that ended with a figure (the loading of the model apart).
    """
    n = len(rows)
    first_ok = [next((a.number for a in r.attempts if a.drew), None) for _, r, _ in rows]
    rounds = {
        ("normal" if k == 0 else f"round_{k}"): round(100 * sum(1 for f in first_ok if f and f <= k + 1) / max(1, n), 1)
        for k in range(retries + 1)
    }
    passing = [(r, sum(a.seconds for a in r.attempts)) for _, r, _ in rows if r.ok]
    non_empty = sum(1 for _, r, _ in rows if r.ok and not empty(r.final, r.request))
    coverage = sum(1 for task, r, _ in rows if r.ok and covered(r.final, r.request, task))
    generate = [sum(a.generate_seconds for a in r.attempts) for _, r, _ in rows]
    execute = [sum(a.execute_seconds for a in r.attempts) for _, r, _ in rows]
    walls = [wall for _, _, wall in rows]
    errors = Counter(a.error.ename for _, r, _ in rows for a in r.attempts if a.error)
    first_errors = Counter(r.attempts[0].error.ename for _, r, _ in rows if r.attempts and r.attempts[0].error)
    same_code_repeated = sum(
        1 for _, r, _ in rows if not r.ok and len({a.code for a in r.attempts}) == 1 and len(r.attempts) > 1
    )
    return {
        "tasks": n,
        "pass_rate_by_round": rounds,
        "non_empty_figure_rate": round(100 * non_empty / max(1, n), 1),
        "request_coverage_rate": round(100 * coverage / max(1, n), 1),
        "passed_every_check": round(100 * sum(1 for _, r, _ in rows if r.ok and r.final.ok) / max(1, n), 1),
        "median_time_to_plot_s": _median([wall for _, wall in passing]),
        "p90_time_to_plot_s": _p90([wall for _, wall in passing]),
        "median_task_wall_s": _median(walls),
        "median_generate_s": _median(generate),
        "median_execute_s": _median(execute),
        "median_overhead_s": _median([w - g - e for w, g, e in zip(walls, generate, execute)]),
        "median_prompt_tokens_first_turn": _median([r.attempts[0].prompt_tokens for _, r, _ in rows if r.attempts]),
        "median_reply_tokens": _median([a.completion_tokens for _, r, _ in rows for a in r.attempts]),
        "attempts": sum(len(r.attempts) for _, r, _ in rows),
        "generations": sum(a.candidates for _, r, _ in rows for a in r.attempts),
        "seconds_generating": round(sum(generate), 1),
        "errors_by_name": dict(errors.most_common()),
        "first_errors_by_name": dict(first_errors.most_common()),
        "failures_with_identical_code_every_attempt": same_code_repeated,
    }


def add_shared_times(outcomes: dict[str, list], summaries: dict[str, dict]) -> None:
    """Median time to a plot over the tasks every protocol solved. A protocol that solves more
    tasks adds slower ones (later rounds), which moves its plain median up even where it is as
    fast on every task both solve; this column compares like with like."""
    solved = [{task.id for task, r, _ in rows if r.ok} for rows in outcomes.values()]
    shared = set.intersection(*solved) if solved else set()
    for protocol, rows in outcomes.items():
        times = [sum(a.seconds for a in r.attempts) for task, r, _ in rows if task.id in shared]
        summaries[protocol]["tasks_every_protocol_solved"] = len(shared)
        summaries[protocol]["median_time_to_plot_shared_s"] = _median(times)


def print_table(summaries: dict[str, dict], settings, seconds: float, file=sys.stdout) -> None:
    rounds = list(next(iter(summaries.values()))["pass_rate_by_round"])
    header = [
        "protocol",
        *rounds,
        "non-empty %",
        "request %",
        "median s to plot",
        "p90 s",
        "median s, tasks all solved",
        "generations",
        "s generating",
    ]
    print(
        f"\nexecution pass rate (%), lib={settings.lib}, model={settings.model if settings.backend != 'replay' else 'replay'}, "
        f"{next(iter(summaries.values()))['tasks']} tasks, {seconds / 60:.1f} min",
        file=file,
    )
    print("| " + " | ".join(header) + " |", file=file)
    print("|" + "---|" * len(header), file=file)
    for protocol, s in summaries.items():
        cells = [
            protocol,
            *(f"{s['pass_rate_by_round'][r]:.1f}" for r in rounds),
            f"{s['non_empty_figure_rate']:.1f}",
            f"{s.get('request_coverage_rate', 0.0):.1f}",
            str(s["median_time_to_plot_s"]),
            str(s["p90_time_to_plot_s"]),
            f"{s.get('median_time_to_plot_shared_s')} ({s.get('tasks_every_protocol_solved')})",
            str(s["generations"]),
            str(s["seconds_generating"]),
        ]
        print("| " + " | ".join(cells) + " |", file=file)


def write_html(path: Path, outcomes: dict, summaries: dict, options: dict) -> None:
    """One self-contained page: summaries, the grid of plots, the failures with code and error."""
    parts = [
        "<!doctype html><meta charset='utf-8'><title>viscoder bench</title><style>",
        "body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:4px 8px}.grid{display:flex;flex-wrap:wrap;gap:12px}.grid figure{margin:0;width:260px}"
        ".grid img{width:260px;border:1px solid #ddd}pre{background:#f6f6f6;padding:8px;white-space:pre-wrap}"
        "</style>",
        "<h1>viscoder bench</h1>",
        f"<p>{html.escape(' '.join(f'--{k}={v}' for k, v in options.items() if v is not None))}</p>",
    ]
    for protocol, rows in outcomes.items():
        s = summaries[protocol]
        parts.append(f"<h2>protocol: {html.escape(protocol)}</h2><table><tr>")
        parts += [f"<th>{html.escape(k)}</th>" for k in s["pass_rate_by_round"]]
        parts.append("<th>non-empty</th><th>request coverage</th><th>median s to plot</th><th>p90 s</th></tr><tr>")
        parts += [f"<td>{v:.1f}%</td>" for v in s["pass_rate_by_round"].values()]
        parts.append(
            f"<td>{s['non_empty_figure_rate']:.1f}%</td><td>{s.get('request_coverage_rate', 0.0):.1f}%</td>"
            f"<td>{s['median_time_to_plot_s']}</td><td>{s['p90_time_to_plot_s']}</td></tr></table>"
        )
        parts.append(f"<p>errors by name: {html.escape(str(s['errors_by_name']))}</p><div class='grid'>")
        for task, result, wall in rows:
            if result.ok and result.images:
                data = base64.b64encode(result.images[0]).decode()
                parts.append(
                    f"<figure><img src='data:image/png;base64,{data}'><figcaption>task {task.id}: "
                    f"{len(result.attempts)} attempt(s), {wall:.1f} s</figcaption></figure>"
                )
        parts.append("</div><h3>failures</h3>")
        for task, result, _ in rows:
            if not result.ok:
                last = result.final
                error = last.error.feedback_text() if last and last.error else ""
                parts.append(
                    f"<details><summary>task {task.id}: {html.escape(last.error.one_line() if last and last.error else '')}"
                    f"</summary><pre>{html.escape(last.code if last else '')}</pre><pre>{html.escape(error)}</pre></details>"
                )
    path.write_text("".join(parts), encoding="utf-8")
