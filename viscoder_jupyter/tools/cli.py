"""The `viscoder` command: each subcommand lives in its own module, imported on use."""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module with a `main(argv) -> int`, one-line help)
COMMANDS = {
    "bench": ("viscoder_jupyter.tools.bench", "run PandasPlotBench tasks through the loop"),
    "serve": ("viscoder_jupyter.tools.serve", "serve one model to every notebook (OpenAI-compatible API)"),
    "prepare-model": ("viscoder_jupyter.tools.offline_model", "join, verify and convert the offline CPU model"),
    "export": ("viscoder_jupyter.tools.export", "write the dialogue log (VisCoder.collect) as fine-tuning data"),
    "models": ("viscoder_jupyter.tools.models", "the model presets: size, what each needs, what runs here"),
    "convert": ("viscoder_jupyter.tools.convert", "a Qwen2 transformers model (VisCoder) to a GGUF file for llama.cpp"),
}


def usage() -> str:
    lines = ["usage: viscoder COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<14} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines + ["", "viscoder COMMAND --help for a command's options."])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"viscoder: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
