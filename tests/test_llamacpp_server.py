"""The openai backend against a server someone else wrote: llama-cpp-python's OpenAI-compatible
server (`python -m llama_cpp.server`) on loopback, running the offline GGUF (Qwen2.5-Coder-0.5B,
Q4_K_M) on one thread. A streamed reply, the stop at the closing fence (the server sees the client
leave and takes the next request), and the one clear message when the server goes away mid-reply.
(The protocol's corner cases, scripted, are in test_openai_backend.py.)"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from viscoder_jupyter.backends import openai as openai_backend
from viscoder_jupyter.backends.openai import OpenAIBackend
from viscoder_jupyter.core.context import describe_frames
from viscoder_jupyter.core.errors import BackendFailed
from viscoder_jupyter.core.prompt import first_turn

SERVER_MODULES = ("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings")
ALIAS = "qwen2.5-coder-0.5b-instruct"
START_TIMEOUT_S = 180.0
SHORT_PLOT = [
    {
        "role": "user",
        "content": "bar chart of the revenue of each region in a pandas DataFrame "
        "sales (columns region, revenue) with matplotlib",
    }
]
LONG_PROSE = [
    {
        "role": "user",
        "content": "Write a long essay, at least 1500 words, on the history of statistics. Plain prose only, no code.",
    }
]

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in SERVER_MODULES),
    reason="llama-cpp-python's server is not installed: pip install 'viscoder-jupyter[cpu,test]'",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """`python -m llama_cpp.server` as a child process (through llama_server.py); its output goes to `log`."""

    def __init__(self, model: Path, log: Path, alias: str = ALIAS, port: int | None = None):
        self.model, self.log, self.alias = model, log, alias
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start on `self.port` (the same URL after a restart) and wait until /v1/models answers."""
        import httpx

        command = [
            sys.executable,
            str(Path(__file__).parent / "llama_server.py"),  # llama_cpp.server, as it runs on this CPU
            "--model",
            str(self.model),
            "--model_alias",
            self.alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_threads",
            "1",
            "--n_threads_batch",
            "1",
            "--n_ctx",
            "2048",
            "--verbose",
            "False",
        ]
        mark = self.log_mark()
        with open(self.log, "a") as log:  # unbuffered: the log shows what the server saw, as it happens
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"llama_cpp.server exited while starting (code {self.process.returncode}): "
                    f"{self.log_since(mark)[-2000:]}"
                )
            try:
                if httpx.get(f"{self.url}/models", timeout=2, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"llama_cpp.server did not answer within {START_TIMEOUT_S:g} s: {self.log_since(mark)[-2000:]}")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None

    def log_mark(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def log_since(self, mark: int) -> str:
        with open(self.log, "rb") as f:
            f.seek(mark)
            return f.read().decode("utf-8", "replace")


@pytest.fixture(scope="module")
def llama_server(offline_gguf, tmp_path_factory):
    server = LlamaServer(offline_gguf, tmp_path_factory.mktemp("llama-server") / "server.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(llama_server):
    """The module's server, restarted if an earlier test left it stopped."""
    if not llama_server.running():
        llama_server.start()
    return llama_server


def generate(backend, messages, on_text=None):
    return asyncio.run(backend.async_generate(messages, on_text))


@pytest.mark.timeout(600)
def test_a_streamed_plotting_reply(server, monkeypatch):
    import pandas as pd

    payloads = []  # every server-sent event, to see whether the server reported usage
    event = openai_backend._Stream.event
    monkeypatch.setattr(
        openai_backend._Stream, "event", lambda self, payload: payloads.append(payload) or event(self, payload)
    )
    sales = pd.DataFrame({"region": ["North", "South", "East", "West"], "revenue": [405, 295, 340, 212]})
    messages = first_turn(
        "bar chart of the revenue of each region", describe_frames({"sales": sales}), "matplotlib"
    )  # the request the extension itself sends
    chunks = []
    started = time.monotonic()
    reply = generate(OpenAIBackend(server.url, ALIAS, max_new_tokens=400), messages, chunks.append)
    print(f"reply in {time.monotonic() - started:.1f} s, {len(chunks)} chunks")
    assert len(chunks) > 10 and "".join(chunks) == reply.text  # streamed piece by piece
    code = re.search(r"```python\n(.*?)```", reply.text, re.S)
    assert code, reply.text
    ast.parse(code.group(1))
    assert "sales" in code.group(1) and "revenue" in code.group(1)
    assert any(json.loads(p).get("choices") for p in payloads if p.strip() != "[DONE]")
    usage = [json.loads(p)["usage"] for p in payloads if p.strip() != "[DONE]" and json.loads(p).get("usage")]
    if usage:  # a server that honours stream_options.include_usage
        assert (reply.prompt_tokens, reply.completion_tokens) == (
            usage[-1]["prompt_tokens"],
            usage[-1]["completion_tokens"],
        )
    else:  # llama_cpp.server sends no usage when streaming: the backend counts the streamed pieces
        assert reply.prompt_tokens == 0 and reply.completion_tokens == len(chunks)


@pytest.mark.timeout(600)
def test_the_stream_is_closed_at_the_fence_and_the_server_takes_the_next_request(server):
    backend = OpenAIBackend(server.url, ALIAS, max_new_tokens=400, read_timeout=120)
    mark = server.log_mark()
    reply = generate(backend, SHORT_PLOT)
    assert reply.text.rstrip().endswith("```") and reply.text.count("```") == 2, reply.text
    assert "```python" in reply.text and backend.last_stop_reason == "fence"
    # The model would go on explaining the code; the server sees the client leave, and stops.
    deadline = time.monotonic() + 30
    while "Disconnected from client" not in server.log_since(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "Disconnected from client" in server.log_since(mark)
    # Right after: the server takes the next request (it was not left stuck).
    started = time.monotonic()
    again = generate(backend, [{"role": "user", "content": "Say hello in five words."}])
    assert again.text.strip() and backend.last_stop_reason in ("stop", "length")
    assert time.monotonic() - started < 120


@pytest.mark.timeout(600)
@pytest.mark.parametrize("how", ["terminate", "kill"])  # shut down (SIGTERM), or crashed (SIGKILL)
def test_a_server_gone_mid_reply_is_one_clear_message_and_a_retry_works(server, how):
    backend = OpenAIBackend(server.url, ALIAS, max_new_tokens=1500)
    process, chunks = server.process, []

    def on_text(text):
        chunks.append(text)
        if len(chunks) == 5:  # well into the reply
            getattr(process, how)()

    with pytest.raises(BackendFailed) as info:
        generate(backend, LONG_PROSE, on_text)
    exc, message = info.value, str(info.value)
    assert process.wait(timeout=30) is not None
    assert message.startswith(f"The model server at {server.url} stopped in the middle of the reply")
    assert f"{len(''.join(chunks))} characters received" in message and len(chunks) >= 5
    assert "\n" not in message and "Traceback" not in message
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)
    # The server comes back on the same URL; the same backend, retried, works.
    server.start()
    assert generate(backend, SHORT_PLOT).text.rstrip().endswith("```")
