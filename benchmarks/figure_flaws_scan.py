"""How often the figure-flaw checks (core/checks.py: bars drawn over each other, a zig-zag line, an
empty legend) flag the benchmark's recorded figures, and which: a false-alarm count without a model.

Reruns every distinct attempt that drew in the committed benchmark rows
(benchmarks/results/*-49/*/results.jsonl) on its task's frame, in this process (matplotlib Agg),
reads its figures with the child kernel's own fact code and prints each flagged one with a PNG to
look at. Usage: python benchmarks/figure_flaws_scan.py DATA OUT (DATA: PandasPlotBench's folder).
"""

import glob
import importlib.util
import json
import signal
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from viscoder_jupyter.core.checks import figure_flaws  # noqa: E402

spec = importlib.util.spec_from_file_location("child", ROOT / "viscoder_jupyter/child/_viscoder_child.py")
child = importlib.util.module_from_spec(spec)
spec.loader.exec_module(child)


def main(data: Path, out: Path) -> None:
    warnings.simplefilter("ignore")
    out.mkdir(parents=True, exist_ok=True)
    codes = {}
    for rows in sorted(glob.glob(str(ROOT / "benchmarks/results/*-49/*/results.jsonl"))):
        for line in open(rows, encoding="utf-8"):
            row = json.loads(line)
            if row.get("drew") and row.get("code"):
                codes.setdefault((row["task"], row["code"]), (rows.split("results/")[1], row["attempt"]))
    signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(TimeoutError()))
    flagged = 0
    for (task, code), (where, attempt) in codes.items():
        plt.close("all")
        shown = []
        plt.show = lambda *a, **k: shown.extend(plt.figure(n) for n in plt.get_fignums())  # noqa: B023
        signal.alarm(20)
        try:
            exec(
                compile(code, "<code>", "exec"),
                {"df": pd.read_csv(data / f"csv/data-{task}.csv"), "np": np, "pd": pd, "plt": plt},
            )
        except BaseException:  # noqa: BLE001 - it raised when run here: not a figure to judge
            continue
        finally:
            signal.alarm(0)
        figures = list({id(f): f for f in shown + [plt.figure(n) for n in plt.get_fignums()]}.values())
        flaws = figure_flaws([child.figure_facts(f) for f in figures], code)
        if flaws:
            flagged += 1
            png = out / f"task{task}-{flagged}.png"
            figures[0].savefig(png, dpi=50)
            print(
                json.dumps(
                    {
                        "task": task,
                        "rows": where,
                        "attempt": attempt,
                        "flaws": [f.ename for f in flaws],
                        "png": str(png),
                    }
                )
            )
    print(f"flagged {flagged} of {len(codes)} distinct figures")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
