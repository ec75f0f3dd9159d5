"""A Qwen2 transformers folder as an f16 GGUF file, written with the `gguf` package.

What llama.cpp's own converter (convert_hf_to_gguf.py) writes for the Qwen2 architecture, for
the models every VisCoder is: the hyperparameters from config.json, each weight under its GGUF
name (`gguf.get_tensor_name_map`), matrices in f16 and vectors (norms, biases) in f32, and the
tokenizer: the byte-level BPE tokens with their types, the merges, the special token ids and the
chat template (`gguf.SpecialVocab`). Weights are read from the safetensors files one tensor at a
time (memory-mapped), so a 7B model converts without holding 15 GB in RAM. No torch needed.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

ARCHITECTURE = "Qwen2ForCausalLM"
Log = Callable[[str], None]
#: Padding tokens llama.cpp's converter adds up to the vocabulary size ("[PAD151665]").
_PAD = re.compile(r"^\[PAD\d+\]$")
_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


class ConvertError(Exception):
    """The folder cannot be converted (wrong architecture, missing files): a one-line reason."""


def read_config(folder: Path) -> dict:
    path = folder / "config.json"
    if not path.is_file():
        raise ConvertError(f"{folder} holds no config.json: it is not a transformers model folder.")
    config = json.loads(path.read_text(encoding="utf-8"))
    found = config.get("architectures") or [config.get("model_type", "unknown")]
    if found[0] != ARCHITECTURE and config.get("model_type") != "qwen2":
        raise ConvertError(
            f"{folder.name} is a {found[0]} model; `viscoder convert` converts the Qwen2 architecture "
            f"({ARCHITECTURE}: every VisCoder, Qwen2.5-Coder). For other architectures use llama.cpp's "
            "convert_hf_to_gguf.py."
        )
    if not (folder / "tokenizer.json").is_file():
        raise ConvertError(f"{folder} holds no tokenizer.json: the GGUF file needs the tokenizer.")
    return config


def _safetensor_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [folder / name for name in names]
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ConvertError(f"{folder} holds no .safetensors weights (older .bin checkpoints are not converted).")
    return files


def safetensors(folder: Path) -> Iterator[tuple[str, str, tuple[int, ...], Callable[[], np.ndarray]]]:
    """(name, dtype, shape, load) of every tensor, in file order; `load()` reads it as float32."""
    for file in _safetensor_files(folder):
        with open(file, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
        data = np.memmap(file, dtype=np.uint8, mode="r", offset=8 + length)
        for name, info in header.items():
            if name == "__metadata__":
                continue
            if info["dtype"] not in _DTYPES:
                raise ConvertError(f"{file.name}: tensor {name} is {info['dtype']}, not F32, F16 or BF16.")
            start, end = info["data_offsets"]

            def load(start=start, end=end, info=info, data=data) -> np.ndarray:
                raw = np.frombuffer(data[start:end], dtype=_DTYPES[info["dtype"]])
                if info["dtype"] == "BF16":  # bf16 is the top half of a float32
                    raw = (raw.astype(np.uint32) << 16).view(np.float32)
                return raw.astype(np.float32).reshape(info["shape"])

            yield name, info["dtype"], tuple(info["shape"]), load


def vocabulary(folder: Path, vocab_size: int) -> tuple[list[str], list[int]]:
    """Tokens by id, padded to the model's vocabulary size, and their GGUF token types."""
    import gguf

    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    if spec.get("model", {}).get("type") != "BPE":
        raise ConvertError("The tokenizer is not byte-level BPE (Qwen2's): it cannot be written as this GGUF.")
    by_id = {int(i): t for t, i in spec["model"]["vocab"].items()}
    added = {int(a["id"]): a for a in spec.get("added_tokens", [])}
    by_id.update({i: a["content"] for i, a in added.items()})
    tokens, types = [], []
    for i in range(max(vocab_size, max(by_id) + 1)):
        token = by_id.get(i)
        if token is None or (i not in added and _PAD.match(token)):
            tokens.append(token or f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(token)
            special = added[i].get("special") or (token.startswith("<|") and token.endswith("|>"))
            types.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(token)
            types.append(gguf.TokenType.NORMAL)
    return tokens, [int(t) for t in types]


def write_f16_gguf(folder: Path, out: Path, name: str, log: Log) -> None:
    """Write the folder's model to `out` (f16 matrices, f32 vectors)."""
    import gguf

    config = read_config(folder)
    blocks = int(config["num_hidden_layers"])
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, blocks)
    writer = gguf.GGUFWriter(out, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.QWEN2])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_context_length(int(config.get("max_position_embeddings", 32768)))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_block_count(blocks)
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(int(config["num_attention_heads"]))
    writer.add_head_count_kv(int(config.get("num_key_value_heads", config["num_attention_heads"])))
    rope = config.get("rope_theta") or (config.get("rope_parameters") or {}).get("rope_theta") or 10000.0
    writer.add_rope_freq_base(float(rope))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    tokens, types = vocabulary(folder, int(config.get("vocab_size", 0)))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=len(tokens))
    if not special.merges:
        raise ConvertError("The tokenizer holds no BPE merges: the GGUF file would not tokenize.")
    special.add_special_token.setdefault("bos", False)  # Qwen2 adds no BOS token
    special.add_to_gguf(writer, quiet=True)

    tensors = []
    for hf_name, _dtype, shape, load in safetensors(folder):
        if hf_name.endswith("rotary_emb.inv_freq"):
            continue
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ConvertError(f"No GGUF name for tensor {hf_name}: not a Qwen2 model as llama.cpp knows it.")
        dtype = np.float16 if len(shape) > 1 else np.float32
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        writer.add_tensor_info(gguf_name, shape, np.dtype(dtype), nbytes)
        tensors.append((gguf_name, dtype, load))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for number, (gguf_name, dtype, load) in enumerate(tensors, 1):
        writer.write_tensor_data(load().astype(dtype))
        if number % 25 == 0 or number == len(tensors):
            log(f"  f16: {number}/{len(tensors)} tensors written ({gguf_name})")
    writer.close()
