"""A first request with a hub model downloads it: its progress (bytes, rate, time left) is shown,
and Cancel stops it cleanly (huggingface_hub 2.x removes its partial file: the next request
downloads again, from the start).

The Hugging Face hub cannot be reached here: `fake_hub.FakeHub` on 127.0.0.1 stands in for it
(HF_ENDPOINT), serving real models: the offline GGUF (Qwen2.5-Coder-0.5B-Instruct, run by
llama.cpp in a real kernel through the sidebar's comm) and the tiny random transformers model.
"""

from __future__ import annotations

import asyncio
import os
import queue
import time
from pathlib import Path

import pytest
from fake_hub import FakeHub
from jupyter_client.manager import start_new_kernel
from test_comm import CommClient

from viscoder_jupyter.core.events import DownloadProgress
from viscoder_jupyter.frontends.progress import TextProgress, download_line

GGUF_REPO = "test-org/Qwen2.5-Coder-0.5B-Instruct-GGUF"
GGUF_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


def have_llama_cpp() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


# --------------------------------------------------------------------------- the sidebar, real kernel


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(not have_llama_cpp(), reason="llama-cpp-python not installed (pip install 'viscoder-jupyter[cpu]')")
def test_sidebar_shows_the_download_and_cancel_stops_it_then_the_next_fix_works(offline_gguf, tmp_path):
    hub_cache = tmp_path / "hf-hub"
    with FakeHub({GGUF_REPO: {GGUF_NAME: Path(offline_gguf)}}, rate=40e6) as hub:
        env = dict(os.environ, HF_ENDPOINT=hub.url, HF_HUB_CACHE=str(hub_cache), HF_HUB_OFFLINE="0")
        km, kc = start_new_kernel(kernel_name="python3", env=env)
        try:
            setup = (
                "%load_ext viscoder_jupyter\n"
                f"%config VisCoder.model = '{GGUF_REPO}:{GGUF_NAME}'\n"
                "import pandas as pd\n"
                "sales = pd.DataFrame({'region': ['N', 'S', 'W'], 'revenue': [1.0, 2.0, 3.0]})\n"
            )
            reply = kc.execute_interactive(setup, timeout=120, output_hook=lambda msg: None)
            assert reply["content"]["status"] == "ok", reply["content"]
            sidebar = CommClient(kc)  # the frontend's end of the comm
            assert sidebar.open()["type"] == "ready"

            # 1. Cancel while the model downloads (40 MB/s: about 12 s for the whole file).
            sidebar.fix("first", settings={"retries": 0})
            while (message := sidebar.next(300))["type"] != "download" or message["done"] == 0:
                assert message["type"] in ("status", "download"), message
            assert message["what"] == f"{GGUF_REPO}:{GGUF_NAME}" and message["total"] == os.path.getsize(offline_gguf)
            sidebar.send({"type": "cancel", "id": "first"})
            tail = [sidebar.next(300)]
            while tail[-1]["type"] == "download":  # progress already on its way
                tail.append(sidebar.next(300))
            assert tail[-1] == {"type": "cancelled", "id": "first"}
            # The download stopped: it hung up on the hub, and no partial file is left behind.
            deadline = time.monotonic() + 5
            while not hub.hangups and time.monotonic() < deadline:
                time.sleep(0.05)
            assert hub.hangups == 1 and hub.bytes_sent < os.path.getsize(offline_gguf)
            assert not list(hub_cache.rglob("*.incomplete"))

            # 2. The next fix downloads it (showing it), loads the model and runs.
            hub.rate = 150e6
            sidebar.fix("second", settings={"retries": 0})
            seen = [sidebar.next(300)]
            while seen[-1]["type"] not in ("done", "cancelled", "error"):
                seen.append(sidebar.next(300))
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    assert seen[-1]["type"] == "done", seen[-1]
    downloads = [m for m in seen if m["type"] == "download"]
    assert len(downloads) >= 3, downloads
    done = [m["done"] for m in downloads]
    assert done == sorted(done) and done[-1] == os.path.getsize(offline_gguf)
    assert all(m["total"] == os.path.getsize(offline_gguf) for m in downloads)
    assert any(m["rate"] > 0 and m["eta"] >= 0 for m in downloads[:-1])  # rate and time left while it runs


# --------------------------------------------------------------------------- transformers, in process


@pytest.fixture
def fake_hub_env(monkeypatch, tmp_path):
    """An empty HF cache under tmp_path, the hub online, and huggingface_hub pointed at `url` (set later).

    huggingface_hub read HF_ENDPOINT when it was imported (in this process, earlier), so the
    constants it was read into are set instead (the kernel test sets HF_ENDPOINT itself).
    """
    import huggingface_hub.constants as constants

    hub = tmp_path / "hf" / "hub"
    hub.mkdir(parents=True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)  # the tiny model is under 1 MB

    def point_at(url: str) -> None:
        monkeypatch.setattr(constants, "ENDPOINT", url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")

    return point_at


@pytest.mark.timeout(300)
def test_a_transformers_model_downloads_with_progress_then_loads(tiny_model_dir, fake_hub_env):
    from viscoder_jupyter.backends.downloads import watching
    from viscoder_jupyter.backends.transformers import TransformersBackend

    files = {p.name: p for p in Path(tiny_model_dir).iterdir() if p.is_file()}
    weights = sum(p.stat().st_size for name, p in files.items() if name.endswith(".safetensors"))
    with FakeHub({"test-org/tiny-coder": files}, rate=4e6) as hub:
        fake_hub_env(hub.url)
        backend = TransformersBackend("test-org/tiny-coder", quantization="none")
        events: list[DownloadProgress] = []
        asyncio.run(watching(backend.async_prepare(), events.append))
    assert backend.load().model is not None  # loaded from the downloaded snapshot
    assert len(events) >= 3, events
    done = [e.bytes_done for e in events]
    assert done == sorted(done) and events[-1].done
    assert events[-1].bytes_total >= weights and events[-1].bytes_done == events[-1].bytes_total
    assert events[0].what == "test-org/tiny-coder"
    assert any(e.rate and e.eta is not None for e in events[:-1])
    assert not any(name.endswith(".md") for _, name in hub.requests)  # only what the model needs


@pytest.mark.timeout(300)
def test_cancelling_a_transformers_download_stops_it(tiny_model_dir, fake_hub_env):
    from viscoder_jupyter.backends.downloads import watching
    from viscoder_jupyter.backends.transformers import TransformersBackend

    files = {p.name: p for p in Path(tiny_model_dir).iterdir() if p.is_file()}
    # Slow and in small pieces: the cancel is seen at the next chunk, long before the file ends.
    with FakeHub({"test-org/tiny-coder-2": files}, rate=0.2e6, piece=32 * 1024) as hub:
        fake_hub_env(hub.url)
        backend = TransformersBackend("test-org/tiny-coder-2", quantization="none")
        seen: queue.Queue = queue.Queue()

        async def cancel_once_it_downloads():
            task = asyncio.ensure_future(watching(backend.async_prepare(), seen.put))
            while seen.empty() or seen.queue[-1].bytes_done == 0:
                await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(cancel_once_it_downloads())
        deadline = time.monotonic() + 5
        while not hub.hangups and time.monotonic() < deadline:  # what the socket buffer held drains first
            time.sleep(0.05)
        assert hub.hangups == 1  # the download stopped: it hung up on the hub before the end
    assert hub.bytes_sent < sum(p.stat().st_size for p in files.values())
    assert not list(Path(hub_cache_dir()).rglob("*.incomplete"))  # huggingface_hub removed its partial file
    assert not list(Path(hub_cache_dir()).rglob("model.safetensors"))  # and nothing half-written is cached


def hub_cache_dir() -> str:
    import huggingface_hub.constants as constants

    return constants.HF_HUB_CACHE


# --------------------------------------------------------------------------- how it reads


def test_the_download_line_says_bytes_rate_and_time_left():
    line = download_line(DownloadProgress("TIGER-Lab/VisCoder-7B", 1_230_000_000, 15_230_000_000, 45e6, 311.0))
    assert line == "downloading TIGER-Lab/VisCoder-7B: 1.2 GB of 15.2 GB (8%), 45.0 MB/s, about 5 min left"
    assert download_line(DownloadProgress("x", 5_000_000)) == "downloading x: 5.0 MB"
    finished = DownloadProgress("x", 10, 10, 5.0, 0.0, done=True)
    assert download_line(finished) == "downloading x: 10 B of 10 B (100%), done"


def test_a_terminal_prints_a_download_every_few_seconds_not_every_update(capsys):
    view = TextProgress(4)
    for n in range(1, 21):
        view.handle(DownloadProgress("m", n, 20, 1.0, 20.0 - n, done=n == 20))
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "VisCoder: downloading m: 1 B of 20 B (5%), 1 B/s, about 19 s left",
        "VisCoder: downloading m: 20 B of 20 B (100%), done",
    ]
