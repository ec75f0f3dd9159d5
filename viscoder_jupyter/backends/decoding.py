"""Greedy decoding that continues a kept key/value cache, with prompt-lookup drafts.

Why not ``model.generate``: in transformers 5.24, assisted decoding (which is how generate runs
prompt lookup) feeds the whole prompt on its first step even when the cache passed in already
holds a prefix, so that prefix lands in the cache twice and the output is wrong; plain
generate handles the prefix, but then prompt lookup is lost. A greedy, batch-of-one loop is
short, and owning it keeps one code path for every case:

- each forward pass feeds the tokens not in the cache yet (the new part of the prompt, then
  the last accepted token) plus a draft, and computes logits only for the draft's positions;
- a draft is what followed the most recent earlier occurrence of the last few tokens (a
  corrected code block repeats the previous one, column names repeat the prompt); the model's
  own greedy choices are kept as far as the draft agrees with them, plus one, and the
  rejected draft tokens are cropped from the cache. Without drafts this is plain greedy
  decoding, token by token.

Every accepted token goes to `on_token`, in order and one at a time, so streaming and the
stop rule see exactly what plain decoding would show them.

The same loop samples when given `choose=sampler(...)` (the self-debug loop's candidates when
greedy retries repeat themselves): draft tokens are kept while the token drawn at each position
equals them, so every token still comes from the model's own distribution.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

#: Longest and shortest n-gram looked up for a draft (longer first: fewer wrong drafts).
NGRAM_MAX, NGRAM_MIN = 3, 2


def lookup_draft(tokens: list[int], size: int, ngram_max: int = NGRAM_MAX, ngram_min: int = NGRAM_MIN) -> list[int]:
    """Up to `size` tokens that followed the latest earlier occurrence of the last n tokens."""
    if size <= 0:
        return []
    length = len(tokens)
    for n in range(min(ngram_max, length - 1), ngram_min - 1, -1):
        pattern = tokens[-n:]
        last = pattern[-1]
        # from the right: the latest occurrence is usually the previous attempt's code
        for end in range(length - 2, n - 2, -1):
            if tokens[end] == last and tokens[end - n + 1 : end + 1] == pattern:
                return tokens[end + 1 : end + 1 + size]
    return []


def greedy_decode(
    model: Any,
    ids: list[int],
    cache: Any,
    reused: int,
    *,
    max_new_tokens: int,
    eos_ids: Iterable[int] = (),
    lookup: int = 0,
    on_token: Callable[[int], str | None] | None = None,
    cancel: threading.Event | None = None,
    choose: Callable[[Any], int] | None = None,
) -> tuple[list[int], list[int], str]:
    """Continue `ids` greedily; `cache` holds the keys/values of ``ids[:reused]`` and grows.

    `choose` replaces the greedy choice (it gets one position's logits, e.g. `sampler`); a draft
    token is then kept while the token drawn at its position equals it.

    Returns ``(new_tokens, tokens, reason)``: the reply's tokens, every token whose keys/values
    may be in the cache (``tokens[:cache.get_seq_length()]`` is what it holds), and why it
    stopped: "eos", "length", "cancelled" or what `on_token` returned ("fence").
    """
    import torch

    eos = set(eos_ids)
    tokens = list(ids)
    pending = tokens[reused:]  # fed next: not in the cache yet
    new: list[int] = []
    while True:
        if cancel is not None and cancel.is_set():
            return new, tokens, "cancelled"
        draft = lookup_draft(tokens, min(lookup, max_new_tokens - len(new) - 1)) if lookup else []
        feed = torch.tensor([pending + draft], device=model.device)
        with torch.inference_mode():
            logits = model(input_ids=feed, cache=cache, use_cache=True, logits_to_keep=len(draft) + 1).logits[0]
        if choose is None:
            choices = logits.argmax(dim=-1).tolist()
            agreed = 0
            while agreed < len(draft) and draft[agreed] == choices[agreed]:
                agreed += 1
            accepted = draft[:agreed] + [choices[agreed]]
        else:
            # Sampling checks a draft the same way: position i's logits are conditioned on the
            # draft before it, so each token is still drawn from the model's own distribution.
            accepted = []
            for position in range(len(draft) + 1):
                accepted.append(choose(logits[position]))
                if position == len(draft) or accepted[-1] != draft[position]:
                    break
            agreed = len(accepted) - 1
        if agreed < len(draft):
            cache.crop(agreed - len(draft))  # forget the rejected draft tokens
        tokens += accepted
        pending = accepted[-1:]
        for token in accepted:
            new.append(token)
            if token in eos:
                return new, tokens, "eos"
            reason = on_token(token) if on_token is not None else None
            if reason:
                return new, tokens, reason
            if len(new) >= max_new_tokens:
                return new, tokens, "length"


TOP_K = 64  # the nucleus is looked for among the likeliest tokens: sorting the whole vocabulary is slow


def sampler(temperature: float, top_p: float, seed: int) -> Callable[[Any], int]:
    """Nucleus sampling from one position's logits, reproducible from `seed`."""
    import torch

    generator = torch.Generator().manual_seed(seed)

    def choose(logits: Any) -> int:
        top = torch.topk(logits.float(), k=min(TOP_K, logits.shape[-1]))  # sorted, likeliest first
        probs = torch.softmax(top.values / max(temperature, 1e-5), dim=-1)
        probs = probs * ((probs.cumsum(0) - probs) < top_p)
        pick = torch.multinomial(probs.cpu(), 1, generator=generator)
        return int(top.indices[int(pick)])

    return choose
