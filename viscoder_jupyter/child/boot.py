"""Starting the child kernel: the warm-up cell that installs `_viscoder_child.py` in it, and
the cell that hands it a request's frames."""

from __future__ import annotations

from pathlib import Path

from .outputs import FACTS_MIME, FRAMES_MIME, STDOUT_CAP

# Lives in the child as module `_viscoder_child`, outside the user namespace.
CHILD_SRC = (Path(__file__).parent / "_viscoder_child.py").read_text(encoding="utf-8")


def warmup_code(cpu_seconds: int) -> str:
    limit = f'__import__("_viscoder_child").limit_cpu({int(cpu_seconds)})\n' if cpu_seconds > 0 else ""
    return f"""\
%matplotlib inline
import pandas as pd
import numpy as np
import matplotlib.pyplot as plt
def __viscoder_boot(src):
    import sys, types
    mod = types.ModuleType("_viscoder_child")
    exec(compile(src, "<viscoder_child>", "exec"), mod.__dict__)
    mod.OUTPUT_CAP = {2 * STDOUT_CAP}
    mod.FACTS_MIME = {FACTS_MIME!r}
    mod.FRAMES_MIME = {FRAMES_MIME!r}
    sys.modules["_viscoder_child"] = mod
    mod.take_baseline(get_ipython())
__viscoder_boot({CHILD_SRC!r})
del __viscoder_boot
{limit}"""


def load_code(path: str) -> str:
    return f'__import__("_viscoder_child").load_frames({path!r})'
