"""benchmarks/gpu_check.py: the GPU path's check. No GPU here: it says so (exit 2), and its dry
path (--device cpu, a narrow model) builds the random Qwen2 model, loads it through the
transformers backend, measures, and runs the loop in a real child kernel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"
NARROW = ["--layers", "1", "--hidden", "64", "--intermediate", "128", "--heads", "4", "--kv-heads", "2"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)


@pytest.mark.timeout(600)
def test_without_cuda_it_says_so_and_how_to_run_the_dry_path():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the check itself runs")
    done = run(*NARROW)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().startswith("gpu_check: no CUDA GPU here") and "--device cpu" in done.stderr


@pytest.mark.timeout(600)
def test_the_dry_path_builds_the_model_and_runs_the_loop_in_a_child_kernel():
    done = run("--device", "cpu", *NARROW, "--tokens", "8", "--repeats", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("model: random Qwen2, 1 layers x hidden 64")
    assert any(line.startswith("load (none, cpu): ") for line in lines)
    assert any(line.startswith("decode: ") and "tokens/s" in line for line in lines)
    assert any(line.startswith("retry: kept cache ") for line in lines)
    assert "loop in a child kernel: attempts ['KeyError', 'ok'], figure drawn" in lines
