"""Fast retries: the kept key/value cache and prompt-lookup decoding give exactly the tokens of a
fresh greedy run of the whole conversation.

The tiny random model runs in float32 here. In bf16, CPU matmuls round differently for
different batch shapes (a prefix computed inside a 300-token prefill differs from the same
prefix computed alone by up to 0.2 in the offline model's logits), and a random model's
top-two logits are nearly tied everywhere, so bf16 would turn rounding into different noise.
float32 keeps that rounding ~1e-7, far under any margin. The offline model, confident as real
models are, is checked in the dtype this machine's CPU gets (bf16 where native, else float32;
slow test below, and the benchmark)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from viscoder_jupyter.backends.decoding import greedy_decode, lookup_draft
from viscoder_jupyter.backends.kv_cache import PrefixCache, common_prefix
from viscoder_jupyter.backends.transformers import TransformersBackend
from viscoder_jupyter.core.errors import CodeRaised
from viscoder_jupyter.core.prompt import feedback_turn, first_turn

FRAMES = {
    "sales": "DataFrame with 3 columns and 4 rows\nColumn names and types: region: object, "
    'revenue: int64, units: int64\nHead:\n{"region":{"0":"North","1":"South"}}'
}
ERROR = CodeRaised(
    "KeyError",
    "'Revenue'",
    'Traceback (most recent call last):\n  File "<cell>", '
    "line 3, in <module>\n    plt.bar(sales['region'], sales['Revenue'])\nKeyError: 'Revenue'",
)


def run(coro):
    return asyncio.run(coro)


def backend(model_dir, **options) -> TransformersBackend:
    options.setdefault("max_new_tokens", 24)
    return TransformersBackend(str(model_dir), quantization="none", dtype="float32", **options)


def fresh(model_dir, messages, **options):
    """A run that computes everything: no kept cache, no prompt lookup."""
    return run(backend(model_dir, reuse_cache=False, prompt_lookup=0, **options).async_generate(messages))


@pytest.fixture
def tiny(tiny_model_dir):
    backend(tiny_model_dir).load().prefix_cache.clear()
    yield tiny_model_dir
    backend(tiny_model_dir).load().prefix_cache.clear()


def conversation(request: str):
    return first_turn(request, FRAMES, "matplotlib")


def test_retries_reuse_the_cache_and_give_the_fresh_tokens(tiny):
    cached = backend(tiny, prompt_lookup=0)
    messages = conversation("bar chart of the revenue of each region")
    first = run(cached.async_generate(messages))
    assert cached.last_reused_tokens == 0
    assert first == fresh(tiny, messages)
    for round_number in (1, 2, 3):
        messages = messages + feedback_turn(first.text, ERROR, round_number)
        chunks = []
        reply = run(cached.async_generate(messages, chunks.append))
        # the previous prompt (and the part of the reply the new prompt repeats) is not recomputed
        assert cached.last_reused_tokens >= first.prompt_tokens
        assert reply.prompt_tokens - cached.last_reused_tokens < reply.prompt_tokens // 2
        assert reply == fresh(tiny, messages)
        assert "".join(chunks) == reply.text
        first = reply


def test_two_conversations_interleaved_each_keep_their_cache(tiny):
    cached = backend(tiny, prompt_lookup=0)
    a = conversation("bar chart of the revenue of each region")
    b = conversation("scatter plot of units against revenue, one colour per region")
    reply_a, reply_b = run(cached.async_generate(a)), run(cached.async_generate(b))
    # b shares only the system prompt and the instructions with a: that prefix is copied,
    # a's own entry stays for a's retry
    assert 0 < cached.last_reused_tokens < reply_b.prompt_tokens
    a += feedback_turn(reply_a.text, ERROR, 1)
    b += feedback_turn(reply_b.text, ERROR, 1)
    retry_a = run(cached.async_generate(a))
    assert cached.last_reused_tokens >= reply_a.prompt_tokens
    retry_b = run(cached.async_generate(b))
    assert cached.last_reused_tokens >= reply_b.prompt_tokens
    assert (retry_a, retry_b) == (fresh(tiny, a), fresh(tiny, b))


def test_a_changed_prompt_is_recomputed_from_the_change(tiny):
    cached = backend(tiny, prompt_lookup=0)
    messages = conversation("bar chart of the revenue of each region")
    reply = run(cached.async_generate(messages))
    # the same conversation, but the user edited the request: nothing after the edit is reused
    edited = conversation("bar chart of the units of each region") + feedback_turn(reply.text, ERROR, 1)
    again = run(cached.async_generate(edited))
    assert 0 < cached.last_reused_tokens < reply.prompt_tokens
    assert again == fresh(tiny, edited)


def test_prompt_lookup_gives_the_plain_greedy_tokens(tiny):
    looked_up = backend(tiny, prompt_lookup=10, max_new_tokens=60)
    messages = conversation("bar chart of the revenue of each region")
    first = run(looked_up.async_generate(messages))
    assert first == fresh(tiny, messages, max_new_tokens=60)
    messages += feedback_turn(first.text, ERROR, 1)
    chunks = []
    retry = run(looked_up.async_generate(messages, chunks.append))
    assert retry == fresh(tiny, messages, max_new_tokens=60)
    assert "".join(chunks) == retry.text


def test_a_cancelled_generation_leaves_a_usable_cache(tiny):
    cached = backend(tiny, prompt_lookup=0, max_new_tokens=2000)
    messages = conversation("bar chart of the revenue of each region")

    async def cancel_after_some_text():
        started = threading.Event()
        task = asyncio.ensure_future(cached.async_generate(messages, lambda text: started.set()))
        while not started.is_set():
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(cancel_after_some_text())
    short = backend(tiny, prompt_lookup=0)
    reply = run(short.async_generate(messages))
    assert short.last_reused_tokens == reply.prompt_tokens - 1  # all but the last prompt token
    assert reply == fresh(tiny, messages)


# --------------------------------------------------------------------------- the pieces


class FakeCache:
    def __init__(self, length):
        self.length = length

    def get_seq_length(self):
        return self.length

    def crop(self, negative):
        self.length += negative


def test_prefix_cache_hands_over_or_copies():
    store = PrefixCache(max_entries=2)
    conversation_a = list(range(100))
    cache_a = FakeCache(100)
    store.put(conversation_a, 60, cache_a)
    # the conversation goes on (its whole prompt is a prefix): the entry is handed over, cropped
    cache, reused = store.take(conversation_a[:80] + [999] * 30)
    assert cache is cache_a and reused == 80 and cache.length == 80 and len(store) == 0
    # another request sharing 40 tokens: a copy, the entry stays for its own conversation
    store.put(conversation_a, 60, cache_a)
    cache, reused = store.take(conversation_a[:40] + [7] * 50)
    assert cache is not cache_a and reused == 40 and cache.length == 40 and cache_a.length == 80
    assert len(store) == 1
    # too short a common prefix, or an identical prompt (one token is always left to compute)
    assert store.take([5] * 50) == (None, 0)
    cache, reused = store.take(conversation_a[:80])
    assert reused == 79
    # at most max_entries, least recently stored first out
    for n in range(3):
        store.put([n] * 50, 10, FakeCache(50))
    assert len(store) == 2 and store.take([0] * 50) == (None, 0)
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2


def test_lookup_draft_copies_what_followed_the_latest_occurrence():
    tokens = [1, 2, 3, 4, 5, 9, 2, 3, 7, 8, 6, 2, 3]
    assert lookup_draft(tokens, 3) == [7, 8, 6]  # the latest "2 3", not the first
    assert lookup_draft(tokens, 1) == [7]
    assert lookup_draft([1, 2, 3, 1, 2], 10, ngram_max=3) == [3, 1, 2]
    assert lookup_draft([5, 6, 7, 8], 4) == []  # nothing repeats
    assert lookup_draft(tokens, 0) == []


def test_greedy_decode_is_generates_greedy_search(tiny):
    """The loop without drafts is plain greedy decoding: the tokens model.generate picks."""
    import torch
    from transformers import DynamicCache

    loaded = backend(tiny).load()
    ids = loaded.tokenizer.apply_chat_template(
        conversation("a bar chart"), add_generation_prompt=True, tokenize=True, return_dict=False
    )
    ids = list(ids["input_ids"] if isinstance(ids, dict) else ids)
    with torch.inference_mode():
        expected = loaded.model.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            generation_config=loaded.generation_config,
            max_new_tokens=40,
        )
    for lookup in (0, 10):
        new, tokens, reason = greedy_decode(
            loaded.model, ids, DynamicCache(config=loaded.model.config), 0, max_new_tokens=40, lookup=lookup
        )
        assert new == expected[0, len(ids) :].tolist() and reason == "length"
        assert tokens[: len(ids) + 40] == ids + new


# --------------------------------------------------------------------------- the real model


@pytest.mark.slow
def test_offline_model_retry_with_cache_and_lookup_is_identical(offline_model_dir):
    """In the CPU's own dtype (what users get): the reused keys/values and the batched draft
    checks give the same tokens."""
    fast = TransformersBackend(str(offline_model_dir), max_new_tokens=48)
    fast.load().prefix_cache.clear()
    messages = conversation("bar chart of the revenue of each region")
    first = run(fast.async_generate(messages))
    messages += feedback_turn(first.text, ERROR, 1)
    retry = run(fast.async_generate(messages))
    assert fast.last_reused_tokens >= first.prompt_tokens
    plain = TransformersBackend(str(offline_model_dir), max_new_tokens=48, reuse_cache=False, prompt_lookup=0)
    assert retry == run(plain.async_generate(messages))
