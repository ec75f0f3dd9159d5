"""How close `viscoder convert` comes to the original: the offline model's transformers folder
(itself converted from the original GGUF, Qwen2.5-Coder-0.5B-Instruct Q4_K_M) back to GGUF, f16
and Q4_K_M, against the original GGUF, on llama.cpp.

    .venv/bin/python benchmarks/convert_agreement.py [--tokens 48] [--keep DIR]

Prints, for each converted file: whether the tokenizer metadata is the original's (tokens,
token types, merges, special token ids, chat template), the top-1 token agreement (the converted
model's greedy choice at each position of the original's greedy reply, teacher-forced), and on
how many prompts the greedy reply is the same, token for token.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: Fixed plotting requests (not the benchmark's tasks), asked through the chat template.
PROMPTS = [
    "Plot a bar chart of revenue by region from a pandas DataFrame `sales` with matplotlib.",
    "Draw a scatter plot of height against weight, coloured by sex, from the DataFrame `people` with seaborn.",
    "Make a line chart of the monthly temperature in the DataFrame `weather` (columns month, temp).",
    "Show a histogram of the column `price` of the DataFrame `cars` with 30 bins.",
    "Create a pie chart of the market share per company in the DataFrame `shares`.",
    "Plot a heatmap of the correlation matrix of the numeric columns of the DataFrame `df`.",
    "Draw a box plot of salary by department from the DataFrame `staff` using plotly express.",
    "Make a stacked area chart of sales per product over the years in the DataFrame `history`.",
]
TOKENIZER_KEYS = (
    "tokenizer.ggml.model",
    "tokenizer.ggml.pre",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.padding_token_id",
    "tokenizer.ggml.add_bos_token",
    "tokenizer.chat_template",
)


def field_value(reader, key: str):
    import gguf

    field = reader.fields.get(key)
    if field is None:
        return None
    if field.types[0] == gguf.GGUFValueType.ARRAY:
        if field.types[-1] == gguf.GGUFValueType.STRING:
            return [bytes(field.parts[i]) for i in field.data]
        return [int(field.parts[i][0]) for i in field.data]
    if field.types[0] == gguf.GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode()
    return field.parts[field.data[0]].tolist()


def tokenizer_differences(original: Path, converted: Path) -> list[str]:
    """The tokenizer metadata keys whose values differ (empty: all the same)."""
    import gguf

    a, b = gguf.GGUFReader(original), gguf.GGUFReader(converted)
    return [key for key in TOKENIZER_KEYS if field_value(a, key) != field_value(b, key)]


def chat_ids(llm, request: str) -> list[int]:
    text = (
        "<|im_start|>system\nYou are a helpful assistant that writes Python plotting code.<|im_end|>\n"
        f"<|im_start|>user\n{request}<|im_end|>\n<|im_start|>assistant\n"
    )
    return llm.tokenize(text.encode(), add_bos=False, special=True)


def greedy(llm, prompt: list[int], n: int) -> list[int]:
    llm.reset()
    out = []
    for token in llm.generate(prompt, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0):
        if token == llm.token_eos() or len(out) >= n:
            break
        out.append(int(token))
    return out


def teacher_forced_top1(llm, prompt: list[int], reply: list[int]) -> list[int]:
    """The model's own argmax at each position of `reply`, given everything before it (one
    token fed at a time; the last position's logits read from the context)."""
    llm.reset()
    llm.eval(prompt)
    choices = []
    for token in reply:
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
        choices.append(int(np.argmax(logits)))
        llm.eval([token])
    return choices


def load(path: Path):
    """llama.cpp on `path`, as the llamacpp backend loads it (no AMX weight repacking, which
    crashes the first decode on some virtual machines: llamacpp_engine.amx_cpu)."""
    from viscoder_jupyter.backends.llamacpp_engine import _model_params, amx_cpu, import_llama_cpp

    llama_cpp = import_llama_cpp()
    with _model_params(**({"use_extra_bufts": False} if amx_cpu() else {})):
        return llama_cpp.Llama(str(path), n_ctx=512, verbose=False)


def measure(original: Path, converted: dict[str, Path], tokens: int) -> dict[str, dict]:
    base = load(original)
    prompts = [chat_ids(base, p) for p in PROMPTS]
    replies = [greedy(base, p, tokens) for p in prompts]
    del base
    results = {}
    for name, path in converted.items():
        llm = load(path)
        agree = total = same = 0
        for prompt, reply in zip(prompts, replies):
            choices = teacher_forced_top1(llm, prompt, reply)
            agree += sum(c == r for c, r in zip(choices, reply))
            total += len(reply)
            same += greedy(llm, prompt, tokens) == reply
        del llm
        results[name] = {
            "tokenizer_differences": tokenizer_differences(original, path),
            "top1_agreement": agree / total,
            "same_greedy_reply": same,
            "prompts": len(prompts),
            "tokens": total,
        }
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=48, help="greedy reply tokens per prompt")
    parser.add_argument("--keep", type=Path, help="write the converted files here (default: a temporary folder)")
    args = parser.parse_args(argv)
    from viscoder_jupyter.tools import offline_model
    from viscoder_jupyter.tools.convert import convert

    original, folder = offline_model.gguf_path(log=None), offline_model.prepare()
    with tempfile.TemporaryDirectory() as scratch:
        where = args.keep or Path(scratch)
        converted = {}
        for quant in ("F16", "Q4_K_M"):
            started = time.monotonic()
            converted[quant] = convert(str(folder), quant, where / f"offline.{quant}.gguf", log=lambda m: None)
            print(
                f"converted to {quant} in {time.monotonic() - started:.0f} s: {converted[quant].stat().st_size / 1e6:,.0f} MB"
            )
        for name, r in measure(Path(original), converted, args.tokens).items():
            print(
                f"{name}: tokenizer metadata {'identical' if not r['tokenizer_differences'] else 'differs: ' + ', '.join(r['tokenizer_differences'])}; "
                f"top-1 token agreement {r['top1_agreement']:.1%} over {r['tokens']} tokens; "
                f"same greedy reply on {r['same_greedy_reply']} of {r['prompts']} prompts"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
