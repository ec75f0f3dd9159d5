"""Starting the child kernel: the warm-up cell that installs `_viscoder_child.py` in it, and
the cell that hands it a request's frames."""

from __future__ import annotations

from pathlib import Path

from .outputs import ERROR_FACTS_MIME, FACTS_MIME, FRAMES_MIME, STDOUT_CAP

# Lives in the child as module `_viscoder_child`, outside the user namespace.
CHILD_SRC = (Path(__file__).parent / "_viscoder_child.py").read_text(encoding="utf-8")
# Lives in the child as module `_viscoder_error_facts`: facts on the live objects when code raises.
ERROR_FACTS_SRC = (Path(__file__).parent / "_viscoder_error_facts.py").read_text(encoding="utf-8")


def warmup_code(cpu_seconds: int) -> str:
    limit = f'__import__("_viscoder_child").limit_cpu({int(cpu_seconds)})\n' if cpu_seconds > 0 else ""
    return f"""\
%matplotlib inline
import pandas as pd
import numpy as np
import matplotlib.pyplot as plt
def __viscoder_boot(name, src, **settings):
    import sys, types
    mod = types.ModuleType(name)
    exec(compile(src, "<" + name.strip("_") + ">", "exec"), mod.__dict__)
    mod.__dict__.update(settings)
    sys.modules[name] = mod
    return mod
__viscoder_boot("_viscoder_error_facts", {ERROR_FACTS_SRC!r}, MIME={ERROR_FACTS_MIME!r}).install(get_ipython())
__viscoder_boot(
    "_viscoder_child", {CHILD_SRC!r}, OUTPUT_CAP={2 * STDOUT_CAP}, FACTS_MIME={FACTS_MIME!r}, FRAMES_MIME={FRAMES_MIME!r}
).take_baseline(get_ipython())
del __viscoder_boot
{limit}"""


def load_code(path: str) -> str:
    return f'__import__("_viscoder_child").load_frames({path!r})'
