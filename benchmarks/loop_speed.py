"""The loop's own speed, apart from the model: one run, medians and ratios side by side.

    .venv/bin/python benchmarks/loop_speed.py [--runs N] [--nbconvert-runs M]

For a simple and a heavy plot: one warm attempt in the child kernel, against (a) the
same code in this warm Python process with the Agg backend saving a PNG (the floor),
plainly and with bbox_inches="tight" as the inline backend saves it (runs interleaved),
and (b) PandasPlotBench's way, `jupyter nbconvert --execute` of a notebook, a fresh
kernel each time. Also frame handover for 1e3, 1e5 and 1e6 rows x 5 mixed columns,
child kernel start, an empty attempt (the per-attempt cost before any plotting), and
`%load_ext viscoder_jupyter` in a fresh process. And a whole request (frames, then the
simple bar) with a fresh kernel per request (a spare swapped in) against the same warm kernel
reused, interleaved: back to back, and after a pause standing in for the model's first reply.
And a request of two attempts with a fresh kernel per attempt against attempts sharing one,
the model's writing between them stood in for by CPU-bound work on every core.

    .venv/bin/python benchmarks/loop_speed.py --requests-only [--runs N] [--pause S]
    .venv/bin/python benchmarks/loop_speed.py --attempts-only [--runs N] [--pause S]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time

LOAD_EXT = """
import time
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
t = time.perf_counter(); ip.run_line_magic("load_ext", "viscoder_jupyter")
print(time.perf_counter() - t)
"""
PLOTS = {
    "simple bar": """
import matplotlib.pyplot as plt
totals = df.groupby("cat")["x"].sum()
plt.bar(totals.index, totals.values)
plt.title("x by category")
plt.show()
""",
    "heavy: 2x2, 100k points": """
import matplotlib.pyplot as plt
import numpy as np
fig, axes = plt.subplots(2, 2, figsize=(10, 8))
sample = df.head(100_000)
axes[0, 0].scatter(sample["i"], sample["x"], s=1, alpha=0.3)
axes[0, 1].hist(sample["x"], bins=100)
axes[1, 0].plot(sample["x"].rolling(500).mean())
axes[1, 1].boxplot([sample.loc[sample["cat"] == c, "x"] for c in "abc"])
fig.tight_layout()
plt.show()
""",
}


def frame(rows: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "i": np.arange(rows),
            "x": rng.random(rows),
            "cat": rng.choice(list("abc"), rows),
            "when": pd.date_range("2020-01-01", periods=rows, freq="s"),
            "flag": rng.random(rows) > 0.5,
        }
    )


def med(samples: list[float]) -> float:
    return statistics.median(samples)


def load_ext_times(runs: int) -> list[float]:
    return [
        float(subprocess.run([sys.executable, "-c", LOAD_EXT], capture_output=True, text=True, check=True).stdout)
        for _ in range(runs)
    ]


def floor_time(code: str, df, **savefig) -> float:
    """The same code in this process, Agg backend, one PNG per figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.show = lambda *a, **k: None
    start = time.perf_counter()
    exec(code, {"df": df.copy(deep=True)})
    buffer = io.BytesIO()
    plt.gcf().savefig(buffer, format="png", **savefig)
    plt.close("all")
    return time.perf_counter() - start


def nbconvert_times(code: str, csv: str, runs: int) -> list[float]:
    import nbformat

    with tempfile.TemporaryDirectory() as folder:
        nb = nbformat.v4.new_notebook(
            cells=[
                nbformat.v4.new_code_cell(
                    f"%matplotlib inline\nimport pandas as pd\ndf = pd.read_csv({csv!r})\n" + code
                )
            ]
        )
        path = os.path.join(folder, "task.ipynb")
        nbformat.write(nb, path)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "jupyter",
                    "nbconvert",
                    "--to",
                    "notebook",
                    "--execute",
                    "--output",
                    os.path.join(folder, "out.ipynb"),
                    path,
                ],
                check=True,
                capture_output=True,
            )
            times.append(time.perf_counter() - start)
        return times


async def kernel_times(frames: dict, df, runs: int) -> dict[str, list[float]]:
    from viscoder_jupyter.child.executor import ChildKernel

    kernel = ChildKernel()
    times: dict[str, list[float]] = {"start": []}
    start = time.perf_counter()
    await kernel.async_start()
    times["start"].append(time.perf_counter() - start)
    try:
        for name, big in frames.items():
            times[name] = []
            for _ in range(3):
                start = time.perf_counter()
                await kernel.async_load_frames({"df": big})
                times[name].append(time.perf_counter() - start)
        await kernel.async_load_frames({"df": df})
        times["empty"] = []
        for _ in range(runs):  # `pass`: what an attempt costs before any plotting (reset, copy, round trip)
            times["empty"].append((await kernel.async_run("pass", timeout=60)).seconds)
        for name, code in PLOTS.items():
            for key in (name, f"{name} floor", f"{name} floor tight"):
                times[key] = []
            for _ in range(runs):  # interleaved, so noise hits all three alike
                outcome = await kernel.async_run(code, timeout=60)
                assert outcome.error is None and outcome.images, outcome.error
                times[name].append(outcome.seconds)
                times[f"{name} floor"].append(floor_time(code, df))
                # The inline backend's PNG: bbox_inches="tight" costs a second layout pass.
                times[f"{name} floor tight"].append(floor_time(code, df, bbox_inches="tight"))
    finally:
        await kernel.async_shutdown()
    return times


async def request_times(df, runs: int, pause: float) -> dict[str, list[float]]:
    """A request (load the frames, one simple attempt) with a fresh kernel per request and with
    the one warm kernel reused ("before"), interleaved. The pause before a request (not timed)
    stands in for the model writing: the spare boots meanwhile."""
    from viscoder_jupyter.child.executor import ChildKernel

    kernels = {"fresh kernel per request": ChildKernel(), "warm kernel reused": ChildKernel(fresh_per_request=False)}
    times: dict[str, list[float]] = {}
    try:
        for kernel in kernels.values():
            await kernel.async_load_frames({"df": df})
            await kernel.async_run("pass", timeout=60)
        for wait in (0.0, pause):
            for _ in range(runs):
                for name, kernel in kernels.items():
                    await asyncio.sleep(wait)
                    start = time.perf_counter()
                    await kernel.async_load_frames({"df": df})
                    outcome = await kernel.async_run(PLOTS["simple bar"], timeout=60)
                    assert outcome.error is None and outcome.images, outcome.error
                    times.setdefault(f"{name}, {wait:g} s pause", []).append(time.perf_counter() - start)
    finally:
        for kernel in kernels.values():
            await kernel.async_shutdown()
    return times


def print_requests(runs: int, pause: float) -> None:
    times = asyncio.run(request_times(frame(200_000), runs, pause))
    print(f"\n| request: frames (200k x 5) + simple bar, medians of {runs} | fresh kernel | warm reused | ratio |")
    print("|---|---|---|---|")
    for wait in (0.0, pause):
        fresh = med(times[f"fresh kernel per request, {wait:g} s pause"])
        warm = med(times[f"warm kernel reused, {wait:g} s pause"])
        label = "back to back" if not wait else f"after a {wait:g} s pause (the model writing)"
        print(f"| {label} | {fresh * 1000:.0f} ms | {warm * 1000:.0f} ms | {fresh / warm:.2f}x |")


FAILS = "import pandas as pd\npd.set_option('display.max_rows', 3)\nraise ValueError('attempt 1 fails')"
MODEL_STAND_IN = """
import sys, time
end, n = time.perf_counter() + float(sys.argv[1]), 0
while time.perf_counter() < end:
    n += 1
print(n)
"""


def model_stand_in(seconds: float) -> int:
    """CPU work done in `seconds` by one busy process per core, as llama.cpp's threads would
    use them while writing: what a kernel booting meanwhile takes from the model shows here."""
    if seconds <= 0:
        return 0
    workers = [
        subprocess.Popen([sys.executable, "-c", MODEL_STAND_IN, str(seconds)], stdout=subprocess.PIPE, text=True)
        for _ in range(os.cpu_count() or 1)
    ]
    return sum(int(w.communicate()[0]) for w in workers)


async def settled(kernel) -> None:
    """Until the kernel's background work (a spare booting, old kernels shutting down) is done:
    one design's background work must not land in the other's measurement."""
    await kernel._retiring_done()
    if kernel._spare_boot is not None:
        await asyncio.gather(kernel._spare_boot, return_exceptions=True)


async def attempt_times(df, runs: int, pause: float) -> dict[str, list[float]]:
    """A request of two attempts (the first fails after setting an option), with a fresh kernel
    per attempt and with the attempts sharing one ("before"), interleaved. Before each attempt
    the model writes (`pause` s of CPU-bound stand-in work on every core, not timed): the next
    attempt's kernel boots and takes the frames meanwhile. Timed: what the user waits for
    beside the model (frames, attempt 1, attempt 2); also the stand-in's work done."""
    from viscoder_jupyter.child.executor import ChildKernel

    kernels = {"fresh per attempt": ChildKernel(), "attempts share one": ChildKernel(fresh_per_attempt=False)}
    times: dict[str, list[float]] = {}
    try:
        for kernel in kernels.values():
            await kernel.async_load_frames({"df": df})
            await kernel.async_run("pass", timeout=60)
        for wait in (0.0, pause):
            for _ in range(runs):
                for name, kernel in kernels.items():
                    await settled(kernel)
                    start = time.perf_counter()
                    await kernel.async_load_frames({"df": df})
                    waited = time.perf_counter() - start
                    work = await asyncio.to_thread(model_stand_in, wait)  # the model writes attempt 1
                    start = time.perf_counter()
                    first = await kernel.async_run(FAILS, timeout=60)
                    waited += time.perf_counter() - start
                    assert first.error is not None
                    kernel.next_attempt()  # as the loop does before the model writes attempt 2
                    work += await asyncio.to_thread(model_stand_in, wait)
                    start = time.perf_counter()
                    second = await kernel.async_run(PLOTS["simple bar"], timeout=60)
                    waited += time.perf_counter() - start
                    assert second.error is None and second.images, second.error
                    times.setdefault(f"{name}, {wait:g} s", []).append(waited)
                    times.setdefault(f"{name}, {wait:g} s, model work", []).append(work)
    finally:
        for kernel in kernels.values():
            await kernel.async_shutdown()
    return times


def print_attempts(runs: int, pause: float) -> None:
    times = asyncio.run(attempt_times(frame(200_000), runs, pause))
    print(
        f"\n| request of 2 attempts: frames (200k x 5), a failing attempt, the model writing, a simple bar; "
        f"medians of {runs} | fresh kernel per attempt | attempts share one | ratio | model's work done, fresh / shared |"
    )
    print("|---|---|---|---|---|")
    for wait in (0.0, pause):
        fresh, shared = med(times[f"fresh per attempt, {wait:g} s"]), med(times[f"attempts share one, {wait:g} s"])
        label = (
            "back to back (no model time to hide the boot in)"
            if not wait
            else f"the model writes {wait:g} s per attempt"
        )
        work = ""
        if wait:
            work = f"{med(times[f'fresh per attempt, {wait:g} s, model work']) / med(times[f'attempts share one, {wait:g} s, model work']):.3f}"
        print(f"| {label} | {fresh * 1000:.0f} ms | {shared * 1000:.0f} ms | {fresh / shared:.2f}x | {work} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--nbconvert-runs", type=int, default=3)
    parser.add_argument("--pause", type=float, default=8.0)
    parser.add_argument("--requests-only", action="store_true")
    parser.add_argument("--attempts-only", action="store_true")
    args = parser.parse_args()
    if args.requests_only:
        print_requests(args.runs, args.pause)
        return
    if args.attempts_only:
        print_attempts(args.runs, args.pause)
        return

    df = frame(200_000)
    handover = {f"handover {n:.0e} x 5": frame(n) for n in (1_000, 100_000, 1_000_000)}
    ext = load_ext_times(5)
    kernel = asyncio.run(kernel_times(handover, df, args.runs))
    with tempfile.NamedTemporaryFile(suffix=".csv", delete=False) as f:
        df.to_csv(f.name, index=False)
    try:
        rows = []
        for name, code in PLOTS.items():
            nbc = nbconvert_times(code, f.name, args.nbconvert_runs)
            rows.append(
                (name, med(kernel[name]), med(kernel[f"{name} floor"]), med(kernel[f"{name} floor tight"]), med(nbc))
            )
    finally:
        os.unlink(f.name)

    print(
        "\n| plot | warm child kernel | floor: Agg, savefig | floor: Agg, savefig tight (the inline PNG) "
        "| nbconvert, fresh kernel | warm / floor | warm / floor tight | nbconvert / warm |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, warm, floor, tight, nbc in rows:
        print(
            f"| {name} | {warm * 1000:.0f} ms | {floor * 1000:.0f} ms | {tight * 1000:.0f} ms | "
            f"{nbc * 1000:.0f} ms | {warm / floor:.2f}x | {warm / tight:.2f}x | {nbc / warm:.0f}x |"
        )
    print(f"\nmedians of {args.runs} runs ({args.nbconvert_runs} for nbconvert); 200k x 5 frame\n")
    print("| step | median |\n|---|---|")
    print(f"| `%load_ext viscoder_jupyter` (fresh process) | {med(ext) * 1000:.0f} ms |")
    print(f"| child kernel start + warm-up | {med(kernel['start']) * 1000:.0f} ms |")
    print(
        f"| empty attempt (`pass`: namespace reset, copy of the 200k-row frame, round trip) | "
        f"{med(kernel['empty']) * 1000:.0f} ms |"
    )
    for name in handover:
        print(f"| {name} (pickle, once per request) | {med(kernel[name]) * 1000:.0f} ms |")
    print_requests(args.runs, args.pause)
    print_attempts(args.runs, args.pause)


if __name__ == "__main__":
    main()
