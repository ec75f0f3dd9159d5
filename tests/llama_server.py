"""`python -m llama_cpp.server ARGS`, with llama.cpp's repacked weight buffers off on a CPU where they
crash (Intel AMX under a VM, as on these machines: llamacpp_engine.amx_cpu). The server is llama-cpp-
python's own, unchanged; only the model's default parameters are set as our engine sets them."""

import os
import runpy
import sys

from viscoder_jupyter.backends.llamacpp_engine import _model_params, amx_cpu

if __name__ == "__main__":
    crashes = amx_cpu() and os.environ.get("VISCODER_LLAMA_AMX") != "1"
    with _model_params(**({"use_extra_bufts": False} if crashes else {})):
        sys.argv[0] = "llama_cpp.server"
        runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
