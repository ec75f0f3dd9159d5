"""A tiny random Qwen2 chat model, built offline in a few seconds, for the backend tests.

It goes through the real transformers paths (tokenizer with a chat template, from_pretrained,
generate); its output is noise. The output layer's rows for the special tokens are zero, so
greedy decoding never ends a reply by itself: tests decide how long replies get.
"""

from __future__ import annotations

import os
from pathlib import Path

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_SOURCES = (
    "ast.py",
    "textwrap.py",
    "string.py",
    "json/__init__.py",
    "json/decoder.py",
    "json/encoder.py",
    "argparse.py",
    "csv.py",
    "statistics.py",
)
_EXTRA = """Here is the code:
```python
import matplotlib.pyplot as plt
import pandas as pd
df = pd.DataFrame({"a": [1, 2, 3], "b": [4, 5, 6]})
plt.bar(df["a"], df["b"])
plt.title("A bar chart")
plt.show()
```
The chart shows the values. ``` ```py ```python
"""


def _training_text() -> list[str]:
    stdlib = Path(os.__file__).parent
    texts = []
    for name in _SOURCES:
        path = stdlib / name
        if path.is_file():
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
    texts.extend([_EXTRA] * 20)
    return texts


def build_tiny_model(path: str | os.PathLike, vocab_size: int = 1024, seed: int = 0) -> Path:
    """Build and save a 2-layer Qwen2 chat model with its own BPE tokenizer into `path`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_training_text(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
    )
    tokenizer.save_pretrained(str(path))

    special_ids = [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS]
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=16384,
        tie_word_embeddings=False,
        bos_token_id=special_ids[0],
        eos_token_id=special_ids[2],
        pad_token_id=special_ids[0],
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight[special_ids] = 0.0  # never chosen by argmax: replies do not end early
    model.generation_config = GenerationConfig(
        do_sample=False,
        bos_token_id=special_ids[0],
        eos_token_id=[special_ids[2], special_ids[0]],
        pad_token_id=special_ids[0],
    )
    model.save_pretrained(str(path))
    return path


if __name__ == "__main__":
    import sys
    import time

    started = time.perf_counter()
    print(
        build_tiny_model(sys.argv[1] if len(sys.argv) > 1 else "/tmp/tiny-viscoder-model"),
        f"{time.perf_counter() - started:.1f} s",
    )
