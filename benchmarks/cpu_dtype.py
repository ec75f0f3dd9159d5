"""bf16 against float32 on this CPU, for the offline model: why `quantization='auto'` picks one.

    .venv/bin/python benchmarks/cpu_dtype.py [--runs 3] [--tokens 32] [--model DIR]

Loads the model twice (bf16 and float32, ~4 GB together for the 0.5B model) and, runs
interleaved, times the quickstart's first-turn prompt (prefill: every prompt token in one
forward pass) and greedy decoding of a fixed number of tokens through the decoding loop the
backend uses (kept cache, no prompt lookup, so both dtypes do the same passes). Prints medians,
the float32/bf16 ratios, and what `auto` chooses on this machine and why.
"""

from __future__ import annotations

import argparse
import statistics
import time

from generation_speed import REQUEST, messages_for  # the quickstart's request, as generation_speed sends it

from viscoder_jupyter.backends import hf_hub, hf_models
from viscoder_jupyter.backends.decoding import greedy_decode

DTYPES = ("bfloat16", "float32")


def quickstart_ids(tokenizer) -> list[int]:
    ids = tokenizer.apply_chat_template(messages_for(REQUEST), add_generation_prompt=True, tokenize=True)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def one_run(model, ids: list[int], tokens: int) -> tuple[float, float]:
    """(prefill seconds, decoded tokens per second)."""
    import torch
    from transformers import DynamicCache

    cache = DynamicCache()
    started = time.perf_counter()
    with torch.inference_mode():
        model(input_ids=torch.tensor([ids[:-1]]), cache=cache, use_cache=True, logits_to_keep=1)
    prefill = time.perf_counter() - started
    started = time.perf_counter()
    new, _, _ = greedy_decode(model, ids, cache, len(ids) - 1, max_new_tokens=tokens)
    return prefill, len(new) / (time.perf_counter() - started)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=32, help="tokens decoded per run")
    parser.add_argument("--model", help="model folder (default: the prepared offline model)")
    args = parser.parse_args(argv)
    if args.model is None:
        from viscoder_jupyter.tools.offline_model import prepare

        args.model = str(prepare())
    ref, is_local = hf_hub.resolve_model(args.model)
    loaded = {dtype: hf_models.get_or_load(ref, is_local, "none", False, dtype) for dtype in DTYPES}
    ids = quickstart_ids(loaded["float32"].tokenizer)
    for dtype in DTYPES:  # first pass of each: allocator and kernel warm-up, not timed
        one_run(loaded[dtype].model, ids[:32], 2)
    samples = {dtype: ([], []) for dtype in DTYPES}
    for _ in range(args.runs):
        for dtype in DTYPES:
            prefill, rate = one_run(loaded[dtype].model, ids, args.tokens)
            samples[dtype][0].append(prefill)
            samples[dtype][1].append(rate)
    med = {dtype: (statistics.median(p), statistics.median(r)) for dtype, (p, r) in samples.items()}

    print(f"\nmodel {ref}; prompt {len(ids)} tokens; {args.tokens} tokens decoded; medians of {args.runs} runs\n")
    print("| dtype | prefill s | decode tokens/s |\n|---|---|---|")
    for dtype in DTYPES:
        print(f"| {dtype} | {med[dtype][0]:.2f} | {med[dtype][1]:.1f} |")
    print(
        f"| float32 / bf16 | {med['float32'][0] / med['bfloat16'][0]:.2f}x the time | "
        f"{med['float32'][1] / med['bfloat16'][1]:.2f}x the rate |"
    )
    native = hf_models.cpu_has_native_bf16()
    fp32 = hf_models.float32_bytes(ref, is_local)
    free = hf_models.available_memory_bytes()
    chosen = "float32" if hf_models.auto_float32_on_cpu(ref, is_local) else "bfloat16"
    print(
        f"\n`auto` here: {chosen} (native bf16: {native}; float32 weights {fp32 / 1e9:.1f} GB, "
        f"{free / 1e9:.1f} GB available)"
        if fp32 and free
        else f"\n`auto` here: {chosen}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
