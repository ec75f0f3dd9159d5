"""The core install against the full one: time to install and size on disk, each in a fresh venv.

    .venv/bin/python benchmarks/install_size.py [--runs 1] [--skip-full] [--out DIR]

Builds the wheel once (with the prebuilt JupyterLab extension: `make labextension` first; no
Node.js at build time), then per run creates a fresh venv and installs
- core: the wheel alone (the magic, the sidebar, the openai and replay backends);
- full: the wheel with `[local,cpu]` (torch, transformers, accelerate, bitsandbytes,
  llama-cpp-python), torch first as `make demo` does (TORCH_SPEC, this machine's CPU build).
Both read pip's cache as a user's second install would (the first run fills it); the times are
wall-clock medians, the sizes `du` of the venv's site-packages plus its share/ folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
TORCH_SPEC = os.environ.get("TORCH_SPEC", "torch==2.13.0")


def pip(python: Path, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", "-q", *args], check=True)


def build_wheel(out: Path) -> Path:
    env = dict(os.environ, HATCH_JUPYTER_BUILDER_SKIP_NPM="1")  # the built extension is shipped as is
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)], check=True, env=env
    )
    (wheel,) = out.glob("viscoder_jupyter-*.whl")
    return wheel


def size_mb(venv: Path) -> float:
    done = subprocess.run(
        ["du", "-sm", *map(str, venv.glob("lib/python*/site-packages")), str(venv / "share")],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(sum(int(line.split()[0]) for line in done.stdout.splitlines()))


def install(venv: Path, wheel: Path, full: bool) -> float:
    """Seconds to install into a fresh venv (the venv's own creation not counted)."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    started = time.perf_counter()
    if full:
        pip(python, "install", TORCH_SPEC)
        pip(python, "install", f"{wheel}[local,cpu]")
    else:
        pip(python, "install", str(wheel))
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--skip-full", action="store_true", help="measure the core install only")
    parser.add_argument("--out", type=Path, help="keep the venvs here (default: a temporary folder)")
    args = parser.parse_args(argv)
    top = args.out or Path(tempfile.mkdtemp(prefix="vc-install-"))
    top.mkdir(parents=True, exist_ok=True)
    wheel = build_wheel(top / "dist")
    kinds = ["core"] + ([] if args.skip_full else ["full"])
    seconds: dict[str, list[float]] = {k: [] for k in kinds}
    sizes: dict[str, float] = {}
    for run in range(args.runs):
        for kind in kinds:  # alternated, so a busy moment does not land on one kind only
            venv = top / f"{kind}-{run}"
            shutil.rmtree(venv, ignore_errors=True)
            seconds[kind].append(install(venv, wheel, full=kind == "full"))
            sizes[kind] = size_mb(venv)
            print(f"{kind} run {run + 1}: {seconds[kind][-1]:.1f} s, {sizes[kind]:.0f} MB", flush=True)
            if args.out is None:
                shutil.rmtree(venv, ignore_errors=True)
    print(f"\n{'install':8} {'median s':>9} {'MB':>7}")
    for kind in kinds:
        print(f"{kind:8} {statistics.median(seconds[kind]):9.1f} {sizes[kind]:7.0f}")
    if "full" in kinds:
        time_ratio = statistics.median(seconds["full"]) / statistics.median(seconds["core"])
        print(f"full/core: {time_ratio:.1f}x the time, {sizes['full'] / sizes['core']:.1f}x the size")
    if args.out is None:
        shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
