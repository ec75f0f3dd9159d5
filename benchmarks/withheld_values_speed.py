"""What keeping the frames' values out of the dialogue log costs (collect_values off): building the
value list for a 1,000,000 x 4 frame, and scrubbing a logged conversation with it. Medians of 5.

    .venv/bin/python benchmarks/withheld_values_speed.py
"""

import statistics
import time

import numpy as np
import pandas as pd

from viscoder_jupyter.core.withheld_values import ValueScrubber

RUNS = 5


def main() -> None:
    rng = np.random.default_rng(0)
    n = 1_000_000
    frame = pd.DataFrame(
        {
            "city": rng.choice([f"city-{i}" for i in range(5000)], n),
            "category": pd.Categorical(rng.choice(["a1", "b2", "c3", "d4"], n)),
            "revenue": rng.normal(1000, 300, n),
            "units": rng.integers(0, 10_000, n),
        }
    )
    text = ("KeyError: 'city-17'\n" + "plt.bar(df['city'], df['revenue'])\n" * 50) * 4
    build, scrub = [], []
    for _ in range(RUNS):
        started = time.perf_counter()
        scrubber = ValueScrubber({"df": frame})
        build.append(time.perf_counter() - started)
        started = time.perf_counter()
        scrubber(text)
        scrub.append(time.perf_counter() - started)
    print(
        f"1M x 4 frame: build median {statistics.median(build) * 1000:.0f} ms, "
        f"scrub of {len(text)} chars median {statistics.median(scrub) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
