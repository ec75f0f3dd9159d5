"""Keep the key/value cache of recent conversations, so a self-debug turn only pays for its new tokens.

A retry resends the whole conversation: the first turn's prompt, the model's reply, the
error. Everything up to where the new prompt stops matching the cached tokens is already
in the cache; only the rest is computed. The match is checked token by token, so a prompt
that differs anywhere is recomputed from there on, never served stale states.

Imports no torch at module level; caches are transformers `DynamicCache` objects.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Any

#: Conversations kept per loaded model. A Qwen2.5-Coder-0.5B cache costs ~12 KB a token in
#: bf16, a 7B one ~56 KB: four 2,000-token conversations stay under 0.5 GB on a 7B model.
MAX_ENTRIES = 4
#: Shorter common prefixes are not worth a copy of the cache.
MIN_REUSE = 16


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


@dataclass(eq=False)
class Entry:
    tokens: list[int]  # exactly the tokens whose keys/values `cache` holds
    prompt_length: int  # the prompt this conversation's last request started from
    cache: Any


class PrefixCache:
    """A few conversations' caches; `take` hands out the one sharing the longest prefix.

    Callers serialize generation on the model (LoadedModel.lock), but `take`/`put` lock anyway.
    """

    def __init__(self, max_entries: int = MAX_ENTRIES):
        self.max_entries = max_entries
        self._entries: list[Entry] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def reusable(self, ids: list[int]) -> int:
        """How many tokens of `ids` `take` would hand over already computed (nothing is taken)."""
        with self._lock:
            best = max((common_prefix(entry.tokens, ids) for entry in self._entries), default=0)
        reused = min(best, len(ids) - 1)
        return reused if reused >= MIN_REUSE else 0

    def take(self, ids: list[int]) -> tuple[Any, int]:
        """``(cache, reused)``: a cache holding exactly ``ids[:reused]``, or ``(None, 0)``.

        At least one token of `ids` is left to compute (generate needs the last prompt
        token's logits). When the new prompt extends the entry's own prompt, this is the same
        conversation going on: the entry is cropped and handed over. Otherwise (another request
        sharing the system prompt) a cropped copy is handed out and the entry stays.
        """
        with self._lock:
            best, best_n = None, 0
            for entry in self._entries:
                n = common_prefix(entry.tokens, ids)
                if n > best_n:
                    best, best_n = entry, n
            reused = min(best_n, len(ids) - 1)
            if best is None or reused < MIN_REUSE:
                return None, 0
            if reused >= best.prompt_length:
                self._entries.remove(best)
                cache = best.cache
            else:
                cache = copy.deepcopy(best.cache)
        _crop(cache, reused)
        return cache, reused

    def put(self, tokens: list[int], prompt_length: int, cache: Any) -> None:
        """Keep `cache`, which holds `tokens`; the least recently used entry goes first."""
        if cache is None or len(tokens) < MIN_REUSE:
            return
        with self._lock:
            self._entries = [e for e in self._entries if e.cache is not cache]
            self._entries.append(Entry(list(tokens), prompt_length, cache))
            del self._entries[: -self.max_entries]


def _crop(cache: Any, length: int) -> None:
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


def cached_length(cache: Any) -> int:
    return 0 if cache is None else int(cache.get_seq_length())
