"""User settings: one traitlets configurable named `VisCoder`.

Precedence, lowest first: built-in default, environment variable, IPython config
(`c.VisCoder.x` or `%config VisCoder.x = ...`), then the magic's flags or the
keyword arguments of `generate_plot`.
"""

from __future__ import annotations

import os
from typing import Any

from traitlets import Bool, CaselessStrEnum, Float, Int, List, TraitError, Unicode, default, validate
from traitlets.config import Configurable

from .errors import RequestError

LIBRARIES = ("matplotlib", "seaborn", "plotly")
QUANTIZATIONS = ("auto", "4bit", "none")
SANDBOX_MODES = ("auto", "required", "off")
REQUIRE_SANDBOX_ENV = "VISCODER_REQUIRE_SANDBOX"  # "1": every child kernel runs sandboxed, or not at all
#: No model configured: the one that fits this machine (backends/machine.py: VisCoder-7B in 4-bit
#: on a CUDA GPU, VisCoder2-7B's GGUF on llama.cpp, else the offline 0.5B model).
DEFAULT_MODEL = "auto"


class VisCoder(Configurable):
    """Settings for %%viscoder and generate_plot."""

    # Built-in defaults are the traits' own; the environment variables named in the help come first.
    backend = Unicode(
        "transformers",
        help="Model backend: 'transformers' (in-process; a .gguf model runs on "
        "'llamacpp'), 'llamacpp' (GGUF files on llama.cpp), 'openai' (any OpenAI-compatible "
        "server) or 'replay'. Env: VISCODER_BACKEND.",
    ).tag(config=True)
    model = Unicode(
        DEFAULT_MODEL,
        help="The model: a preset name (`viscoder models` lists them, e.g. the offline 0.5B), a hub "
        "id, a local folder, a local .gguf file (runs on llama.cpp) or a hub file REPO_ID:FILE.gguf. "
        "Env: VISCODER_MODEL.",
    ).tag(config=True)
    replay = Unicode(help="JSONL file of recorded replies for the replay backend. Env: VISCODER_REPLAY.").tag(
        config=True
    )
    lib = CaselessStrEnum(LIBRARIES, default_value="matplotlib", help="Plotting library the code must use.").tag(
        config=True
    )
    retries = Int(3, help="Self-debug rounds after the first attempt (as in VisCoder's protocol).").tag(config=True)
    timeout = Float(10.0, help="Seconds one attempt may run in the child kernel.").tag(config=True)
    attempt_budget = Float(
        180.0,
        help="Most seconds the model may spend on one attempt's reply, reading the prompt included; "
        "a reply still going then is stopped and the attempt fails ('the reply ran past N s: write "
        "shorter code'). 180 s fits a 7B model on a laptop CPU; 0: no limit.",
    ).tag(config=True)
    stop_repeats = Bool(
        True,
        help="Stop a reply that repeats itself (the same line or block again and again) and tell the "
        "model so; off: a reply runs until the model ends it, max_new_tokens or attempt_budget.",
    ).tag(config=True)
    insert = Bool(True, help="Insert the working code as a new cell below.").tag(config=True)
    max_new_tokens = Int(2048, help="Most tokens the model may write in one reply.").tag(config=True)
    quantization = CaselessStrEnum(
        QUANTIZATIONS,
        default_value="auto",
        help="'auto': 4-bit NF4 on CUDA; on the CPU bf16 if native, else float32 where it fits; "
        "'4bit' forces bitsandbytes 4-bit (also on the CPU); 'none': no 4-bit.",
    ).tag(config=True)
    frame_budget = Int(4000, help="Most characters describing one DataFrame in the prompt.").tag(config=True)
    # Beyond VisCoder's own loop (traceback-only feedback); each can be switched to measure it.
    checks = Bool(
        False,
        help="Check the quality of a figure that draws (several figures for one, unreadable tick "
        "labels) and feed problems back like errors (a figure that draws nothing always is). Off: "
        "measured on the offline 0.5B model, no task gained and it took 6% more generations; turn "
        "it on with a bigger model that can act on the feedback, and measure it with `viscoder bench "
        "DATA --protocol ours,ours-checks --model M`.",
    ).tag(config=True)
    request_checks = Bool(
        True,
        help="With `checks`: also check that the figure does what the request asks, "
        "where no model is needed to tell (the columns it names are used, 'by X' splits by "
        "X, horizontal bars, sorted bars), and feed misses back like errors.",
    ).tag(config=True)
    data_feedback = Bool(
        True,
        help="Add facts from the live frames (real column names, dtypes, values) "
        "and library versions to the feedback after an error.",
    ).tag(config=True)
    runtime_facts = Bool(
        True,
        help="Add what the running code saw at an error to the feedback: the failing object's type and "
        "closest real attributes, the callee's real keywords, the shapes on the failing line, the "
        "nearest valid colormap/marker/colour names, a reply cut at the token limit.",
    ).tag(config=True)
    repairs = Bool(
        True,
        help="Mend data loading from files, missing imports and savefig calls "
        "before running, without asking the model (off: only the line reading a frame from "
        "its file, which the prompt asks for, becomes the live frame).",
    ).tag(config=True)
    samples = Int(
        3,
        help="When a retry fails the same way as the attempt before it, the next round "
        "samples up to this many candidates and keeps the first that works (0: greedy only).",
    ).tag(config=True)
    base_url = Unicode(
        help="OpenAI-compatible server for the 'openai' backend, e.g. "
        "http://127.0.0.1:8000/v1; 'auto' finds or starts `viscoder serve`. "
        "Env: VISCODER_BASE_URL."
    ).tag(config=True)
    api_key = Unicode(help="Bearer token for the 'openai' backend. Env: VISCODER_API_KEY.").tag(config=True)
    sandbox = CaselessStrEnum(
        SANDBOX_MODES,
        default_value="auto",
        help="Run the child kernel under bubblewrap: 'auto' where it works, 'required' refuses to run "
        "without it, 'off' never.",
    ).tag(config=True)
    memory_limit_mb = Int(4096, help="Most memory (MiB) the child kernel may use; 0 for no limit.").tag(config=True)
    cpu_time_limit_s = Int(
        600, help="Most CPU seconds the child kernel may use before it is restarted; 0 for no limit."
    ).tag(config=True)
    allow_cpu_download = Bool(
        False,
        help="Allow downloading a hub model of more than 2B parameters to run on a CPU.",
    ).tag(config=True)
    # Learning from use: opt-in, local only (core/dialogue_log.py; `viscoder export` reads it).
    collect = Bool(
        False,
        help="Append each finished request's conversation with the model (messages, attempts, the "
        "user's verdict) to a local JSONL log, for fine-tuning data (`viscoder export`). Nothing leaves the machine.",
    ).tag(config=True)
    collect_path = Unicode(
        help="The dialogue log `collect` writes: a JSONL file (created private to the user); "
        "empty: viscoder/dialogues.jsonl in the Jupyter data folder."
    ).tag(config=True)
    collect_values = Bool(
        False,
        help="With `collect`: keep the frames' values in the log. Off (the default): type placeholders "
        "such as <float64> stand for the sample rows, the values of the frames are taken out of the "
        "request, cell, code and tracebacks, and the data facts of feedback turns are withheld.",
    ).tag(config=True)
    # What a front end (the sidebar's comm) may choose besides the kernel's own model and backend:
    # a notebook must not point the kernel at a model or server its configuration does not list.
    allowed_models = List(
        Unicode(),
        help="Models the sidebar may choose besides `model` (hub ids, folders or .gguf files); "
        "empty: only the kernel's own.",
    ).tag(config=True)
    allowed_backends = List(
        Unicode(),
        help="Backends the sidebar may choose besides `backend`; empty: only the kernel's own.",
    ).tag(config=True)

    @default("backend")
    def _default_backend(self):
        return os.environ.get("VISCODER_BACKEND") or setting_default("backend")

    @default("model")
    def _default_model(self):
        return os.environ.get("VISCODER_MODEL") or setting_default("model")

    @default("base_url")
    def _default_base_url(self):
        return os.environ.get("VISCODER_BASE_URL", setting_default("base_url"))

    @default("api_key")
    def _default_api_key(self):
        return os.environ.get("VISCODER_API_KEY", setting_default("api_key"))

    @default("replay")
    def _default_replay(self):
        return os.environ.get("VISCODER_REPLAY", setting_default("replay"))

    @validate("retries")
    def _check_retries(self, proposal):
        if proposal["value"] < 0:
            raise RequestError("--retries must be 0 or more.")
        return proposal["value"]

    @validate("attempt_budget")
    def _check_attempt_budget(self, proposal):
        if proposal["value"] < 0:
            raise RequestError("--attempt-budget must be 0 (no limit) or a positive number of seconds.")
        return proposal["value"]

    @validate("timeout")
    def _check_timeout(self, proposal):
        if proposal["value"] <= 0:
            raise RequestError("--timeout must be a positive number of seconds.")
        return proposal["value"]

    def with_overrides(self, **overrides) -> VisCoder:
        """A copy with the given options set; None means 'keep the configured value'."""
        values = {name: getattr(self, name) for name in self.trait_names(config=True)}
        for name, value in overrides.items():
            if value is None:
                continue
            if name not in values:
                raise RequestError(f"Unknown option {name!r}; known: {', '.join(sorted(values))}.")
            values[name] = value
        lib = str(values["lib"]).lower()
        if lib not in LIBRARIES:
            raise RequestError(f"Unknown --lib {values['lib']!r}; choose one of: {', '.join(LIBRARIES)}.")
        try:
            return VisCoder(**values)
        except TraitError as exc:
            raise RequestError(str(exc).splitlines()[0]) from None


def sandbox_mode(mode: str | None) -> str:
    """The sandbox mode a child kernel runs under: `mode`, except that VISCODER_REQUIRE_SANDBOX=1
    (set by whoever runs the kernel: a machine's admin, CI) makes it 'required' whatever a setting,
    a flag or a front end says."""
    return "required" if sandbox_required_by_environment() else (mode or "auto").lower()


def sandbox_required_by_environment() -> bool:
    return os.environ.get(REQUIRE_SANDBOX_ENV) == "1"


def setting_default(name: str) -> Any:
    """The built-in default of one setting, as its trait declares it (environment aside)."""
    return VisCoder.class_traits()[name].default_value


def setting(settings: Any, name: str) -> Any:
    """`settings.name` of any settings-like object; missing, None or "" give the built-in default."""
    value = getattr(settings, name, None)
    return setting_default(name) if value is None or value == "" else value


def choices_text(values) -> str:
    """'a, b or c'."""
    values = [str(v) for v in values]
    return ", ".join(values[:-1]) + " or " + values[-1] if len(values) > 1 else "".join(values)
