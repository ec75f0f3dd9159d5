"""`viscoder serve` with the tiny model on loopback, used through the openai backend: streaming,
the token, a client that disconnects, two kernels at once, discovery and start on demand."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from viscoder_jupyter.backends.openai import OpenAIBackend
from viscoder_jupyter.backends.transformers import TransformersBackend
from viscoder_jupyter.core.errors import BackendUnavailable

TOKEN = "test-token-123"
CAP = 16000  # the server's --max-new-tokens: a reply that is not cancelled runs for minutes


def ask(text: str) -> list[dict[str, str]]:
    # Requests that share no prefix with each other, so no kept cache is involved in comparisons.
    return [{"role": "user", "content": text}]


def wait_for(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def discovered(runtime: Path) -> dict | None:
    files = list(runtime.glob("viscoder-serve-*.json"))
    return json.loads(files[0].read_text()) if files else None


def stop(pid: int, runtime: Path) -> None:
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: discovered(runtime) is None, 30, "the discovery file to go")


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    runtime = tmp_path_factory.mktemp("runtime")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "viscoder_jupyter.tools.cli",
            "serve",
            "--model",
            str(tiny_model_dir),
            "--quantization",
            "none",
            "--device",
            "cpu",
            "--token",
            TOKEN,
            "--max-new-tokens",
            str(CAP),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        info = wait_for(lambda: discovered(runtime) or process.poll() is not None, 120, "the server")
        assert process.poll() is None, process.stdout.read()
        assert info["pid"] == process.pid and info["token"] == TOKEN
        assert info["url"].startswith("http://127.0.0.1:") and info["url"].endswith("/v1")
        assert (runtime / f"viscoder-serve-{process.pid}.json").stat().st_mode & 0o077 == 0
        info["runtime"], info["model"] = runtime, str(tiny_model_dir)
        yield info
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    assert not list(runtime.glob("viscoder-serve-*.json"))  # cleaned up on exit


def client(server, **options) -> OpenAIBackend:
    options.setdefault("api_key", TOKEN)
    return OpenAIBackend(server["url"], server["model"], **options)


def health(server) -> dict:
    return httpx.get(server["url"][:-3] + "/health", timeout=10).json()


def idle(server) -> dict | None:
    state = health(server)
    return state if state["active"] == 0 else None


def test_streams_what_the_in_process_backend_writes(server, tiny_model_dir):
    messages = ask("stream me a plot")
    chunks = []
    reply = asyncio.run(client(server, max_new_tokens=30).async_generate(messages, chunks.append))
    local = asyncio.run(
        TransformersBackend(str(tiny_model_dir), quantization="none", max_new_tokens=30).async_generate(messages)
    )
    assert reply.text == local.text and len(chunks) > 1 and "".join(chunks) == reply.text
    assert (reply.prompt_tokens, reply.completion_tokens) == (local.prompt_tokens, 30)
    whole = httpx.post(
        f"{server['url']}/chat/completions",
        timeout=60,
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={"model": server["model"], "messages": messages, "max_tokens": 30},
    ).json()
    assert whole["choices"][0]["message"]["content"] == reply.text
    assert whole["choices"][0]["finish_reason"] == "length"
    models = httpx.get(f"{server['url']}/models", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert [m["id"] for m in models["data"]] == [server["model"]]


def test_a_wrong_or_missing_token_is_refused(server):
    for key in ("wrong-token", ""):
        with pytest.raises(BackendUnavailable, match="refused the request.*401.*api_key"):
            asyncio.run(client(server, api_key=key).async_generate(ask("no entry")))
    assert httpx.get(f"{server['url']}/models").status_code == 401
    with pytest.raises(BackendUnavailable, match="404.*It serves: " + server["model"]):
        asyncio.run(OpenAIBackend(server["url"], "TIGER-Lab/VisCoder-7B", TOKEN).async_generate(ask("x")))


def test_clients_that_disconnect_free_their_slot(server):
    before = health(server)

    async def main():
        chunks = []
        long = asyncio.ensure_future(client(server, max_new_tokens=CAP).async_generate(ask("long"), chunks.append))
        while not chunks:
            await asyncio.sleep(0.02)
        queued = asyncio.ensure_future(client(server, max_new_tokens=CAP).async_generate(ask("queued")))
        await asyncio.to_thread(wait_for, lambda: health(server)["queued"] == 1, 30, "the queued request")
        for task in (queued, long):  # leave the queue, then stop the running generation
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        # Both would hold the model for minutes; the next request is served at once.
        return await asyncio.wait_for(client(server, max_new_tokens=5).async_generate(ask("next")), 60)

    reply = asyncio.run(main())
    assert reply.completion_tokens == 5
    after = wait_for(lambda: idle(server), 30, "the server to be idle")
    assert after["cancelled"] - before["cancelled"] == 2
    assert after["completed"] - before["completed"] == 1 and after["queued"] == 0


KERNEL = textwrap.dedent("""
    import asyncio, json, sys
    from viscoder_jupyter.backends.openai import OpenAIBackend
    backend = OpenAIBackend("auto", sys.argv[1], max_new_tokens=20)  # finds the server, no URL given
    reply = asyncio.run(backend.async_generate([{"role": "user", "content": sys.argv[2]}]))
    print(json.dumps({"text": reply.text, "url": backend.base_url}))
""")


def test_two_kernels_find_the_server_and_are_served_in_turn(server, tiny_model_dir):
    before = health(server)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(server["runtime"]))
    kernels = [
        subprocess.Popen(
            [sys.executable, "-c", KERNEL, server["model"], request],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for request in ("first kernel's plot", "second kernel's plot")
    ]
    outputs = []
    for kernel in kernels:
        out, err = kernel.communicate(timeout=120)
        assert kernel.returncode == 0, err
        outputs.append(json.loads(out))
    local = TransformersBackend(str(tiny_model_dir), quantization="none", max_new_tokens=20)
    for output, request in zip(outputs, ("first kernel's plot", "second kernel's plot")):
        assert output["url"] == server["url"]
        assert output["text"] == asyncio.run(local.async_generate(ask(request))).text
    after = health(server)
    assert after["completed"] - before["completed"] == 2 and after["max_active"] == 1


def test_auto_starts_one_server_that_every_kernel_shares(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    first = OpenAIBackend("auto", str(tiny_model_dir), quantization="none", max_new_tokens=8)
    try:
        reply = asyncio.run(first.async_generate(ask("started on demand")))
        assert reply.completion_tokens == 8
        info = discovered(tmp_path)
        assert info["url"] == first.base_url and info["token"] and first.api_key == info["token"]
        second = OpenAIBackend("auto", str(tiny_model_dir), max_new_tokens=8)  # another kernel
        assert asyncio.run(second.async_generate(ask("found, not started"))).completion_tokens == 8
        assert second.base_url == first.base_url
        assert len(list(tmp_path.glob("viscoder-serve-*.json"))) == 1
    finally:
        info = discovered(tmp_path)
        if info:
            stop(info["pid"], tmp_path)


def test_serve_help_documents_its_options():
    done = subprocess.run(
        [sys.executable, "-m", "viscoder_jupyter.tools.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for option in ("--host", "--port", "--model", "--device", "--quantization", "--token", "127.0.0.1"):
        assert option in done.stdout
