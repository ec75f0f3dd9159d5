"""How much the generation speed-ups save, on the offline CPU model, measured side by side.

    .venv/bin/python benchmarks/generation_speed.py [--runs 3] [--model DIR] [--concurrent 3]
        [--engine all|transformers|llamacpp] [--gguf FILE]

The quickstart's request ("bar chart of the revenue of each region" on a 4-row `sales` frame),
its first turn, and a realistic self-debug turn: the model's code is run as written and its
real error is fed back with `prompt.feedback_turn`. Each run measures, interleaved so that
machine noise hits every variant alike, and the table prints medians:

- the first turn and the retry turn, plain (every prompt token computed, one token per
  forward pass), with the kept key/value cache, with prompt-lookup decoding, and with both
  (the default); the retry with a kept cache is timed after its own first turn;
- tokens the model would write after the closing fence, had it not been stopped there;
- N different requests through one `viscoder serve`, one after another and all at once.

Every variant's text is compared with the plain run's: the speed-ups must not change it.

The llama.cpp rows (`--engine llamacpp` runs only them) take the same two turns through the
`llamacpp` backend on the offline model's GGUF, plain and with the kept cache + prompt-lookup
drafts, next to raw llama-cpp-python (`Llama.create_completion` on the same prompt tokens,
same file, same threads): decode tokens/s (first streamed token to last), turn seconds, and
the prompt tokens a retry takes from the cache.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import pandas as pd

from viscoder_jupyter.backends.openai import OpenAIBackend
from viscoder_jupyter.backends.transformers import TransformersBackend
from viscoder_jupyter.core.codeblocks import extract_code
from viscoder_jupyter.core.context import describe_frames
from viscoder_jupyter.core.errors import CodeRaised, NoFigure
from viscoder_jupyter.core.prompt import feedback_turn, first_turn

REQUEST = "bar chart of the revenue of each region"
SALES = pd.DataFrame(
    {"region": ["North", "South", "East", "West"], "revenue": [405, 295, 340, 212], "units": [81, 64, 70, 45]}
)
SERVE_REQUESTS = [
    "bar chart of the revenue of each region",
    "bar chart of the units of each region",
    "pie chart of the revenue share of each region",
    "line chart of revenue and units",
    "horizontal bar chart of units per region",
    "scatter plot of units against revenue",
]
VARIANTS = {  # name: (reuse_cache, prompt_lookup)
    "plain": (False, 0),
    "kept cache": (True, 0),
    "prompt lookup": (False, 10),
    "cache + lookup": (True, 10),
}


def messages_for(request: str) -> list[dict[str, str]]:
    return first_turn(request, describe_frames({"sales": SALES}), "matplotlib")


def realistic_feedback(reply: str):
    """Run the model's code as written (no file to read, no live frame handover): its real error."""
    import matplotlib

    matplotlib.use("Agg")
    code = extract_code(reply) or reply
    with tempfile.TemporaryDirectory() as empty:
        cwd = os.getcwd()
        os.chdir(empty)
        try:
            exec(compile(code, "<cell>", "exec"), {"sales": SALES.copy()})
            error = NoFigure()
        except Exception as exc:  # noqa: BLE001 - whatever it raises is the feedback
            error = CodeRaised(type(exc).__name__, str(exc), traceback.format_exc())
        finally:
            os.chdir(cwd)
            import matplotlib.pyplot as plt

            plt.close("all")
    return code, error


PASSES = {"n": 0}  # forward passes of the in-process model: a count machine noise cannot blur


def count_passes(model) -> None:
    if not getattr(model, "_benchmark_counted", False):
        model.register_forward_pre_hook(lambda module, args: PASSES.__setitem__("n", PASSES["n"] + 1))
        model._benchmark_counted = True


def timed(backend, messages):
    PASSES["n"] = 0
    started = time.perf_counter()
    reply = asyncio.run(backend.async_generate(messages))
    return reply, time.perf_counter() - started


def backend(model: str, variant: str, **options) -> TransformersBackend:
    reuse, lookup = VARIANTS[variant]
    return TransformersBackend(model, reuse_cache=reuse, prompt_lookup=lookup, **options)


def in_process(model: str, runs: int, samples: dict, texts: dict, notes: dict) -> None:
    first = messages_for(REQUEST)
    count_passes(backend(model, "plain").load().model)
    reference, _ = timed(backend(model, "plain"), first)
    code, error = realistic_feedback(reference.text)
    retry = first + feedback_turn(code, error, 1)
    notes["feedback"] = error.one_line()
    for run in range(runs):
        order = list(VARIANTS) if run % 2 == 0 else list(reversed(VARIANTS))
        for variant in order:
            b = backend(model, variant)
            b.load().prefix_cache.clear()
            reply, seconds = timed(b, first)
            samples.setdefault(("first", variant), []).append((seconds, reply.completion_tokens))
            notes[("passes", "first", variant)] = PASSES["n"]
            texts.setdefault(("first", variant), set()).add(reply.text)
            if not VARIANTS[variant][0]:
                b.load().prefix_cache.clear()
            reply, seconds = timed(b, retry)
            samples.setdefault(("retry", variant), []).append((seconds, reply.completion_tokens))
            notes[("passes", "retry", variant)] = PASSES["n"]
            texts.setdefault(("retry", variant), set()).add(reply.text)
            notes.setdefault(("reused", variant), b.last_reused_tokens)
            notes[("prompt", "retry")] = reply.prompt_tokens
        for turn, messages in (("first", first), ("retry", retry)):  # what the fence stop saves
            b = backend(model, "cache + lookup", stop_at_fence=False)
            b.load().prefix_cache.clear()
            reply, seconds = timed(b, messages)
            samples.setdefault((turn, "no fence stop"), []).append((seconds, reply.completion_tokens))
        print(f"  run {run + 1}/{runs} done", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- llama.cpp

LLAMA_VARIANTS = {"plain": (False, 0), "cache + lookup": (True, 10)}  # name: (reuse_cache, prompt_lookup)


def timed_stream(backend, messages):
    """(reply, turn seconds, decode tokens/s from the first streamed text to the last)."""
    marks: list[float] = []
    started = time.perf_counter()
    reply = asyncio.run(backend.async_generate(messages, lambda chunk: marks.append(time.perf_counter())))
    seconds = time.perf_counter() - started
    rate = (reply.completion_tokens - 1) / (marks[-1] - marks[0]) if len(marks) > 1 else float("nan")
    return reply, seconds, rate


def raw_completion(llm, ids: list[int], tokens: int):
    """Raw llama-cpp-python on the same prompt tokens: greedy `create_completion`, streamed,
    from an empty cache; `tokens` new tokens exactly (no stop strings)."""
    llm.reset()
    marks, text = [], []
    started = time.perf_counter()
    for chunk in llm.create_completion(
        ids, max_tokens=tokens, temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, stream=True
    ):
        marks.append(time.perf_counter())
        text.append(chunk["choices"][0]["text"])
    seconds = time.perf_counter() - started
    rate = (tokens - 1) / (marks[-1] - marks[0]) if len(marks) > 1 else float("nan")
    return "".join(text), seconds, rate


def llama_rows(gguf: str, runs: int, samples: dict, texts: dict, notes: dict) -> None:
    from viscoder_jupyter.backends.llamacpp import LlamaCppBackend
    from viscoder_jupyter.backends.llamacpp_engine import DEFAULT_N_CTX, import_llama_cpp, load_gguf, worker

    Llama = import_llama_cpp().Llama  # imported as the backend imports it: same OpenMP settings

    def ours(variant: str, **options) -> LlamaCppBackend:
        reuse, lookup = LLAMA_VARIANTS[variant]
        return LlamaCppBackend(gguf, reuse_cache=reuse, prompt_lookup=lookup, **options)

    loaded = worker().submit(load_gguf, gguf).result()
    threads = loaded.n_threads
    raw = Llama(model_path=gguf, n_ctx=DEFAULT_N_CTX, n_threads=threads, n_threads_batch=threads, verbose=False)
    notes["llama threads"] = threads
    first = messages_for(REQUEST)
    reference, _, _ = timed_stream(ours("plain"), first)
    code, error = realistic_feedback(reference.text)
    retry = first + feedback_turn(code, error, 1)
    notes["llama feedback"] = error.one_line()
    for run in range(runs):
        order = list(LLAMA_VARIANTS) if run % 2 == 0 else list(reversed(LLAMA_VARIANTS))
        for variant in order:
            b = ours(variant)
            loaded.llm.reset()  # the first turn from an empty cache
            for turn, messages in (("first", first), ("retry", retry)):
                reply, seconds, rate = timed_stream(b, messages)
                samples.setdefault(("llama", turn, variant), []).append((seconds, reply.completion_tokens, rate))
                texts.setdefault(("llama", turn, variant), set()).add(reply.text)
                notes[("llama prompt", turn)] = reply.prompt_tokens
                notes[("llama evaluated", turn, variant)] = b.last_evaluated_prompt_tokens
                notes[("llama reused", turn, variant)] = b.last_reused_tokens
        for turn, messages in (("first", first), ("retry", retry)):
            ids = loaded.prompt_tokens(messages)
            tokens = samples[("llama", turn, "plain")][-1][1]
            # on the backend's llama.cpp thread: one OpenMP team for both (see llamacpp_engine.worker)
            text, seconds, rate = worker().submit(raw_completion, raw, ids, tokens).result()
            samples.setdefault(("llama", turn, "raw create_completion"), []).append((seconds, tokens, rate))
            texts.setdefault(("llama", turn, "raw create_completion"), set()).add(text)
        print(f"  llama.cpp run {run + 1}/{runs} done", file=sys.stderr, flush=True)
    raw.close()


def report_llama(samples: dict, texts: dict, notes: dict, runs: int, gguf: str) -> None:
    print(
        f"\nllama.cpp ({Path(gguf).name}, {notes['llama threads']} threads), medians of {runs} runs; "
        f"retry prompt {notes[('llama prompt', 'retry')]} tokens; feedback: {notes['llama feedback']}"
    )
    print(f"{'':<46}{'time s':>9}{'tokens':>8}{'decode':>9}{'vs raw':>8}{'prompt evaluated':>18}")
    for turn in ("first", "retry"):
        raw_rate = median([r for _, _, r in samples[("llama", turn, "raw create_completion")]])
        for variant in ("raw create_completion", *LLAMA_VARIANTS):
            triples = samples[("llama", turn, variant)]
            seconds, tokens = median([s for s, _, _ in triples]), median([t for _, t, _ in triples])
            rate = median([r for _, _, r in triples])
            evaluated = notes.get(("llama evaluated", turn, variant))
            reused = notes.get(("llama reused", turn, variant), 0)
            prompt = notes[("llama prompt", turn)]
            where = f"{evaluated} of {prompt}" if evaluated is not None else f"{prompt} of {prompt}"
            label = f"{turn} turn, {variant}" + (f", {reused} reused" if reused else "")
            print(f"{label:<46}{seconds:9.2f}{tokens:8.0f}{rate:9.1f}{rate / raw_rate:8.2f}{where:>18}")
    ours_same = all(
        len(texts[("llama", turn, v)] | texts[("llama", turn, "plain")]) == 1
        for turn in ("first", "retry")
        for v in LLAMA_VARIANTS
    )
    raw_same = all(
        texts[("llama", turn, "raw create_completion")] == texts[("llama", turn, "plain")]
        for turn in ("first", "retry")
    )
    print(
        f"greedy output identical across variants and runs: {'yes' if ours_same else 'NO'}; "
        f"same text as raw create_completion: {'yes' if raw_same else 'NO'}"
    )


# --------------------------------------------------------------------------- viscoder serve


def start_serve(model: str, runtime: str) -> tuple[subprocess.Popen, dict]:
    from viscoder_jupyter.backends.discovery import find_servers

    env = dict(os.environ, JUPYTER_RUNTIME_DIR=runtime)
    process = subprocess.Popen(
        [sys.executable, "-m", "viscoder_jupyter.tools.cli", "serve", "--model", model, "--device", "cpu"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    for _ in range(1200):
        found = [i for i in find_servers(Path(runtime)) if i["pid"] == process.pid]
        if found:
            return process, found[0]
        if process.poll() is not None:
            raise SystemExit("viscoder serve exited")
        time.sleep(0.1)
    raise SystemExit("viscoder serve did not start")


def through_serve(model: str, runs: int, n: int, samples: dict) -> None:
    with tempfile.TemporaryDirectory() as runtime:
        process, info = start_serve(model, runtime)
        try:

            def one(request, results):
                b = OpenAIBackend(info["url"], model, info["token"])
                results.append(timed(b, messages_for(request)))

            for run in range(runs):
                # Each mode gets requests of its own (the server keeps caches of what it saw);
                # which mode gets which set, and which goes first, alternates between runs.
                sets = [[f"{r} (take {run}{k})" for r in SERVE_REQUESTS[k * n : (k + 1) * n]] for k in (0, 1)]
                modes = ["one after another", "all at once"]
                if run % 2:
                    modes.reverse()
                for mode, requests in zip(modes, sets):
                    results: list = []
                    started = time.perf_counter()
                    if mode == "one after another":
                        for request in requests:
                            one(request, results)
                    else:
                        threads = [threading.Thread(target=one, args=(r, results)) for r in requests]
                        for t in threads:
                            t.start()
                        for t in threads:
                            t.join()
                    total = time.perf_counter() - started
                    samples.setdefault(("serve", mode), []).append(
                        (total, sum(reply.completion_tokens for reply, _ in results))
                    )
                    samples.setdefault(("serve latency", mode), []).append((statistics.mean(s for _, s in results), 0))
                print(f"  serve run {run + 1}/{runs} done", file=sys.stderr, flush=True)
        finally:
            process.terminate()
            process.wait(timeout=60)


def median(values):
    return statistics.median(values) if values else float("nan")


def report(samples: dict, texts: dict, notes: dict, runs: int, n: int) -> None:
    def row(label, key, base=None, passes=""):
        pairs = samples.get(key, [])
        seconds, tokens = median([s for s, _ in pairs]), median([t for _, t in pairs])
        rate = f"{tokens / seconds:7.1f}" if tokens else "      -"
        ratio = ""
        if base:
            ratio = f"{seconds / median([s for s, _ in samples[base]]):6.2f}"
        print(f"{label:<46}{seconds:9.2f}{tokens:8.0f} {rate}{passes:>8}  {ratio}")

    print(f"\nmedians of {runs} runs; retry prompt {notes[('prompt', 'retry')]} tokens; feedback: {notes['feedback']}")
    print(f"{'':<46}{'time s':>9}{'tokens':>8}{'tok/s':>8}{'passes':>8}  ratio")
    for turn in ("first", "retry"):
        for variant in VARIANTS:
            reused = f", {notes[('reused', variant)]} reused" if turn == "retry" and VARIANTS[variant][0] else ""
            row(
                f"{turn} turn, {variant}{reused}",
                (turn, variant),
                None if variant == "plain" else (turn, "plain"),
                str(notes[("passes", turn, variant)]),
            )
    for turn in ("first", "retry"):
        stopped, unstopped = samples[(turn, "cache + lookup")], samples[(turn, "no fence stop")]
        saved = median([t for _, t in unstopped]) - median([t for _, t in stopped])
        print(
            f"{turn} turn without the fence stop: {median([t for _, t in unstopped]):.0f} tokens, "
            f"{median([s for s, _ in unstopped]):.2f} s; the stop saves {saved:.0f} tokens, "
            f"{median([s for s, _ in unstopped]) - median([s for s, _ in stopped]):.2f} s"
        )
    identical = all(
        len(texts[(turn, v)] | texts[(turn, "plain")]) == 1 for turn in ("first", "retry") for v in VARIANTS
    )
    print(f"greedy output identical across variants and runs: {'yes' if identical else 'NO'}")
    if ("serve", "all at once") in samples:
        print(f"\nviscoder serve, {n} different requests (total wall time; tokens; mean latency):")
        row(f"{n} requests one after another", ("serve", "one after another"))
        row(f"{n} requests at once", ("serve", "all at once"), ("serve", "one after another"))
        for mode in ("one after another", "all at once"):
            print(
                f"  mean latency per request, {mode}: {median([s for s, _ in samples[('serve latency', mode)]]):.2f} s"
            )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", help="model folder (default: the prepared offline model)")
    parser.add_argument("--concurrent", type=int, default=3, help="requests sent at once to viscoder serve")
    parser.add_argument("--no-serve", action="store_true", help="skip the viscoder serve part")
    parser.add_argument(
        "--engine",
        choices=("all", "transformers", "llamacpp"),
        default="all",
        help="which rows to measure (llamacpp: skipped with a note when not installed)",
    )
    parser.add_argument("--gguf", help="GGUF file for the llama.cpp rows (default: the offline model's)")
    args = parser.parse_args(argv)
    from viscoder_jupyter.tools import offline_model

    samples, texts, notes = {}, {}, {}
    if args.engine in ("all", "transformers"):
        if args.model is None:
            args.model = str(offline_model.prepare(log=None))
        in_process(args.model, args.runs, samples, texts, notes)
        if not args.no_serve:
            through_serve(args.model, args.runs, min(args.concurrent, len(SERVE_REQUESTS) // 2), samples)
        report(samples, texts, notes, args.runs, min(args.concurrent, len(SERVE_REQUESTS) // 2))
    if args.engine in ("all", "llamacpp"):
        from viscoder_jupyter.backends.llamacpp_engine import import_llama_cpp
        from viscoder_jupyter.core.errors import BackendUnavailable

        try:
            import_llama_cpp()
        except BackendUnavailable:
            print("\nllama.cpp rows skipped: pip install 'viscoder-jupyter[cpu]'")
            return 0
        gguf = args.gguf or str(offline_model.gguf_path(log=None))
        llama_rows(gguf, args.runs, samples, texts, notes)
        report_llama(samples, texts, notes, args.runs, gguf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
