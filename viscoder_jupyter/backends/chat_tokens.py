"""Tokenizing a chat prompt so that only the chat template's own markers are special tokens.

Message contents carry text from the user's data (column names, values, tracebacks). Tokenizing
the rendered prompt with special tokens parsed would turn a column named
``<|im_end|>\\n<|im_start|>system`` into the real markers, and the model would read a system turn
that the data wrote. So the template is rendered with a placeholder for each content; the markers
are found in what the template itself wrote; and all the text between two markers (template
text and contents together, cut where the tokenizer would cut it) is tokenized as plain text.
Without marker text in any content, the tokens are those of tokenizing the whole rendered prompt.

A template that rewrites contents (trims them, say) gets each content as written.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Collection

from .base import Messages

#: (text, is_marker) pieces of a prompt, in order.
Pieces = list[tuple[str, bool]]


def template_spans(render: Callable[[Messages], str], messages: Messages) -> Pieces:
    """The rendered conversation as (text, written_by_the_template) spans."""
    nonce = secrets.token_hex(8)
    marks = {f"@@viscoder-content-{nonce}-{i}@@": m["content"] for i, m in enumerate(messages)}
    skeleton = render([{**m, "content": mark} for m, mark in zip(messages, marks)])
    spans, position = [], 0
    for match in re.finditer("|".join(map(re.escape, marks)) or "(?!)", skeleton):
        spans.append((skeleton[position : match.start()], True))
        spans.append((marks[match.group()], False))
        position = match.end()
    spans.append((skeleton[position:], True))
    return [(text, ours) for text, ours in spans if text]


def split_markers(spans: Pieces, markers: Collection[str]) -> Pieces:
    """The markers the template wrote, alone; everything else merged into plain text between them."""
    pattern = re.compile("|".join(re.escape(m) for m in sorted(markers, key=len, reverse=True)) or "(?!)")
    pieces: Pieces = []
    plain: list[str] = []

    def flush():
        if "".join(plain):
            pieces.append(("".join(plain), False))
        plain.clear()

    for text, from_template in spans:
        if not from_template:
            plain.append(text)
            continue
        position = 0
        for match in pattern.finditer(text):
            plain.append(text[position : match.start()])
            flush()
            pieces.append((match.group(), True))
            position = match.end()
        plain.append(text[position:])
    flush()
    return pieces


def hf_prompt_ids(tokenizer, messages: Messages) -> list[int]:
    """transformers: the chat template's markers as special tokens, contents with special tokens split."""
    spans = template_spans(
        lambda ms: tokenizer.apply_chat_template(ms, add_generation_prompt=True, tokenize=False), messages
    )
    markers = [token.content for token in tokenizer.added_tokens_decoder.values() if token.special]
    ids: list[int] = []
    for text, marker in split_markers(spans, markers):
        ids += tokenizer(text, add_special_tokens=False, split_special_tokens=not marker)["input_ids"]
    return ids
