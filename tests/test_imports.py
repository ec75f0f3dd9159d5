"""`%load_ext` must stay fast: no torch or transformers until a model is needed."""

import subprocess
import sys

SCRIPT = """
import sys
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "viscoder_jupyter")
import viscoder_jupyter
viscoder_jupyter.generate_plot  # the lazy attribute resolves
heavy = sorted(m for m in ("torch", "transformers", "bitsandbytes", "accelerate") if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
"""


def test_load_ext_imports_no_model_stack():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY=\n" in out.stdout
