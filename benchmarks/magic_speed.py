"""How fast the parts of %%viscoder that are not the model are.

    .venv/bin/python benchmarks/magic_speed.py [--runs N]

Prints medians of: `%load_ext viscoder_jupyter` in a fresh process, child kernel start
with warm-up, frame handover, and one warm attempt of a simple bar chart in the child
kernel, next to the same code run in this process with the Agg backend (the floor).
"""
from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import subprocess
import sys
import time

LOAD_EXT = """
import time
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
t = time.perf_counter(); ip.run_line_magic("load_ext", "viscoder_jupyter")
print(time.perf_counter() - t)
"""
BAR = """
import matplotlib.pyplot as plt
totals = df.groupby("region")["revenue"].sum()
plt.bar(totals.index, totals.values)
plt.title("Revenue by region")
plt.show()
"""


def median_ms(samples: list[float]) -> str:
    return f"{1000 * statistics.median(samples):8.1f} ms"


def load_ext_times(runs: int) -> list[float]:
    return [float(subprocess.run([sys.executable, "-c", LOAD_EXT], capture_output=True, text=True,
                                 check=True).stdout) for _ in range(runs)]


def floor_times(df, runs: int) -> list[float]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = []
    for _ in range(runs):
        start = time.perf_counter()
        namespace = {"df": df.copy(deep=True)}
        plt.show = lambda *a, **k: None
        exec(BAR, namespace)
        buffer = io.BytesIO()
        plt.gcf().savefig(buffer, format="png")
        plt.close("all")
        times.append(time.perf_counter() - start)
    return times


async def kernel_times(df, big, runs: int) -> dict[str, list[float]]:
    from viscoder_jupyter.executor import ChildKernel

    kernel = ChildKernel()
    times: dict[str, list[float]] = {"start": [], "handover_small": [], "handover_1e6": [], "attempt": []}
    start = time.perf_counter()
    await kernel.async_start()
    times["start"].append(time.perf_counter() - start)
    try:
        for name, frame in (("handover_small", df), ("handover_1e6", big)):
            for _ in range(max(3, runs // 3)):
                start = time.perf_counter()
                await kernel.async_load_frames({"df": frame})
                times[name].append(time.perf_counter() - start)
        await kernel.async_load_frames({"df": df})
        for _ in range(runs):
            outcome = await kernel.async_run(BAR, timeout=10)
            assert outcome.error is None and outcome.images, outcome.error
            times["attempt"].append(outcome.seconds)
    finally:
        await kernel.async_shutdown()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    import numpy as np
    import pandas as pd

    df = pd.DataFrame({"region": ["North", "South", "West", "North"], "revenue": [10.0, 7.5, 3.0, 4.0]})
    n = 1_000_000
    rng = np.random.default_rng(0)
    big = pd.DataFrame({"i": np.arange(n), "x": rng.random(n), "cat": rng.choice(["a", "b", "c"], n),
                        "when": pd.date_range("2020-01-01", periods=n, freq="s"), "flag": rng.random(n) > 0.5})

    ext = load_ext_times(max(3, args.runs // 3))
    kernel = asyncio.run(kernel_times(df, big, args.runs))
    floor = floor_times(df, args.runs)
    ratio = statistics.median(kernel["attempt"]) / statistics.median(floor)
    print(f"%load_ext viscoder_jupyter          {median_ms(ext)}  (median of {len(ext)}, fresh process)")
    print(f"child kernel start + warm-up        {median_ms(kernel['start'])}")
    print(f"frame handover, 4 x 2               {median_ms(kernel['handover_small'])}")
    print(f"frame handover, 1e6 x 5 mixed       {median_ms(kernel['handover_1e6'])}")
    print(f"warm attempt, simple bar chart      {median_ms(kernel['attempt'])}  (median of {args.runs})")
    print(f"same code in-process, Agg + PNG     {median_ms(floor)}  (the floor)")
    print(f"warm attempt / floor                {ratio:8.2f} x")


if __name__ == "__main__":
    main()
