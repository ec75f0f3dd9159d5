"""`viscoder convert`: a Qwen2 transformers folder to GGUF (f16, and Q4_K_M through llama.cpp's
quantizer), checked on the offline model without a hub: its converted transformers folder (made
from the original GGUF) goes back to GGUF; llama.cpp loads it, its tokenizer metadata (tokens,
types, merges, special ids, chat template) is the original's, and its greedy replies match the
original's. The agreement figures are benchmarks/convert_agreement.py's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from convert_agreement import PROMPTS, chat_ids, greedy, load, tokenizer_differences  # noqa: E402

from viscoder_jupyter.backends import machine  # noqa: E402
from viscoder_jupyter.tools import cli  # noqa: E402

pytestmark = pytest.mark.skipif(not machine.probe().llama_cpp, reason="llama-cpp-python not installed")


@pytest.fixture(scope="module")
def converted(offline_model_dir, tmp_path_factory) -> dict[str, Path]:
    """The offline folder converted to F16 and Q4_K_M with the command a user runs."""
    where = tmp_path_factory.mktemp("converted")
    out = {}
    for quant in ("F16", "Q4_K_M"):
        assert (
            cli.main(["convert", str(offline_model_dir), "--quant", quant, "--out", str(where / f"m.{quant}.gguf")])
            == 0
        )
        out[quant] = where / f"m.{quant}.gguf"
    return out


@pytest.mark.timeout(900)
def test_the_offline_model_goes_back_to_gguf_with_its_tokenizer_and_its_replies(converted, offline_gguf):
    assert sorted(converted["F16"].parent.iterdir()) == sorted(converted.values())  # nothing half-written beside
    assert converted["Q4_K_M"].stat().st_size < converted["F16"].stat().st_size / 2.5
    for path in converted.values():
        assert tokenizer_differences(Path(offline_gguf), path) == []  # chat template and special tokens too
    original = load(Path(offline_gguf))
    prompts = [chat_ids(original, p) for p in PROMPTS[:3]]
    replies = [greedy(original, p, 24) for p in prompts]
    del original
    for quant, path in converted.items():
        llm = load(path)  # llama.cpp loads it
        same = sum(greedy(llm, p, 24) == r for p, r in zip(prompts, replies))
        del llm
        assert same >= 2, f"{quant}: the same greedy reply on {same} of 3 prompts"


def test_the_path_is_the_last_line_on_stdout(converted, offline_model_dir, capsys):
    assert cli.main(["convert", str(offline_model_dir), "--quant", "f16", "--out", str(converted["F16"])]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [str(converted["F16"])] and "exists already" in captured.err


def test_another_architecture_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}))
    (tmp_path / "tokenizer.json").write_text("{}")
    assert cli.main(["convert", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("viscoder convert: error: ") and "\n" not in err
    assert "is a LlamaForCausalLM model" in err and "Qwen2 architecture" in err and "convert_hf_to_gguf.py" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "tokenizer.json"]  # nothing written


def test_an_unknown_quantization_and_a_missing_folder_are_one_line(tmp_path, capsys):
    assert cli.main(["convert", str(tmp_path / "nowhere"), "--quant", "Q4_K_M"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["convert", str(tmp_path), "--quant", "Q9"]) == 1
    assert "Unknown --quant 'Q9'" in capsys.readouterr().err
