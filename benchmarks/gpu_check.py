"""The GPU path, checked in one short command with no download: a random Qwen2 model of a
realistic width (VisCoder-7B's: hidden 3584, MLP 18944, 28 query / 4 key-value heads; 4 layers
and a small BPE vocabulary so it builds in seconds), loaded in 4-bit (bitsandbytes NF4) on CUDA
through the transformers backend, then the self-debug loop end to end in a real child kernel.

    .venv/bin/python benchmarks/gpu_check.py                 # on a machine with a CUDA GPU
    .venv/bin/python benchmarks/gpu_check.py --device cpu --layers 1 --hidden 64 --intermediate 128 \\
        --heads 4 --kv-heads 2                               # the dry path: builds and runs it on a CPU

Prints the load time, the decode speed (tokens/s), the retry's generation time with the kept
key/value cache against a plain retry (cache dropped), and the peak GPU memory. The random model
writes noise, so the code each attempt runs is fixed: the first raises a KeyError (the loop feeds
it back: a retry), the second draws the bar chart. Without CUDA it says so and exits with 2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TEMPLATE = (
    "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
FAILING = "import matplotlib.pyplot as plt\ntotals = sales.groupby('Region')['revenue'].sum()\nplt.bar(totals.index, totals.values)\n"
WORKING = "import matplotlib.pyplot as plt\ntotals = sales.groupby('region')['revenue'].sum()\nplt.bar(totals.index, totals.values)\n"


def build_model(folder: Path, args) -> Path:
    """Save a random Qwen2 model of the given width with a small trained BPE tokenizer."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    text = [Path(os.__file__).with_name(n).read_text(errors="replace") for n in ("ast.py", "argparse.py", "csv.py")]
    trainer = trainers.BpeTrainer(
        vocab_size=args.vocab,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(text, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=SPECIAL[0], eos_token=SPECIAL[2], pad_token=SPECIAL[0], chat_template=TEMPLATE
    )
    tokenizer.save_pretrained(folder)
    ids = [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL]
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        max_position_embeddings=32768,
        tie_word_embeddings=False,
        bos_token_id=ids[0],
        eos_token_id=ids[2],
        pad_token_id=ids[0],
    )
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # built in bf16, as VisCoder's checkpoints are
    try:
        model = Qwen2ForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    with torch.no_grad():
        model.lm_head.weight[ids] = 0.0  # replies do not end early: decode speed over --tokens tokens
    model.save_pretrained(folder)
    params = sum(p.numel() for p in model.parameters())
    print(f"model: random Qwen2, {args.layers} layers x hidden {args.hidden}, {params / 1e9:.2f}B parameters")
    return folder


async def run_loop(backend, frames):
    """One request through the loop in a real child kernel: attempt 1 fails, attempt 2 plots."""
    from viscoder_jupyter import runtime
    from viscoder_jupyter.core import loop
    from viscoder_jupyter.core.settings import VisCoder

    codes = iter([FAILING, WORKING])
    kernel = runtime.child_kernel()
    settings = VisCoder(backend="transformers", retries=1, samples=0, sandbox="auto")
    return await loop.async_run(
        "bar chart of the revenue of each region",
        frames,
        settings,
        backend=backend,
        kernel=kernel,
        lock=runtime.kernel_lock(kernel),
        extract=lambda reply: "code",  # the noise is no code; the attempts run fixed code
        prepare=lambda code, names: next(codes),
    )


def retry_seconds(backend, messages, reply_text, keep: bool, repeats: int) -> float:
    """Median seconds of the retry turn's generation, with the first turn's cache kept or not."""
    retry = [*messages, {"role": "assistant", "content": reply_text}]
    retry.append({"role": "user", "content": "KeyError: 'Region'. Fix the code."})
    times = []
    for _ in range(repeats):
        backend.reuse_cache = True
        asyncio.run(backend.async_generate(messages))  # the first turn, cached
        backend.reuse_cache = keep
        started = time.perf_counter()
        asyncio.run(backend.async_generate(retry))
        times.append(time.perf_counter() - started)
    backend.reuse_cache = True
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=3584)
    parser.add_argument("--intermediate", type=int, default=18944)
    parser.add_argument("--heads", type=int, default=28)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=2048)
    parser.add_argument("--tokens", type=int, default=64, help="tokens per reply")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    import pandas as pd
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA GPU here (torch.cuda.is_available() is False); this check needs one. "
            "`--device cpu` runs the same steps without 4-bit (the dry path).",
            file=sys.stderr,
        )
        return 2
    from viscoder_jupyter.backends.transformers import TransformersBackend
    from viscoder_jupyter.core.context import describe_frames
    from viscoder_jupyter.core.prompt import first_turn

    sales = pd.DataFrame({"region": ["North", "South", "East", "West"] * 50, "revenue": range(200)})
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        folder = build_model(Path(scratch), args)
        print(f"built and saved in {time.perf_counter() - started:.1f} s")
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        quantization = "4bit" if args.device == "cuda" else "none"
        backend = TransformersBackend(str(folder), quantization=quantization, max_new_tokens=args.tokens)
        started = time.perf_counter()
        loaded = backend.load()
        print(f"load ({quantization}, {loaded.options['device']}): {time.perf_counter() - started:.1f} s")

        messages = first_turn(
            "bar chart of the revenue of each region", describe_frames({"sales": sales}), "matplotlib"
        )
        started = time.perf_counter()
        reply = asyncio.run(backend.async_generate(messages))
        seconds = time.perf_counter() - started
        print(f"decode: {reply.completion_tokens / seconds:.1f} tokens/s ({reply.prompt_tokens}-token prompt)")

        kept = retry_seconds(backend, messages, reply.text, keep=True, repeats=args.repeats)
        plain = retry_seconds(backend, messages, reply.text, keep=False, repeats=args.repeats)
        print(f"retry: kept cache {kept:.2f} s, plain {plain:.2f} s ({plain / kept:.2f}x)")

        from viscoder_jupyter import runtime

        result = runtime.run_sync(run_loop(backend, {"sales": sales}))
        names = [a.error.ename if a.error else "ok" for a in result.attempts]
        print(f"loop in a child kernel: attempts {names}, figure {'drawn' if result.ok else 'missing'}")
        if args.device == "cuda":
            print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 1e9:.2f} GB")
        runtime.shutdown()
        return 0 if result.ok and names == ["KeyError", "ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
