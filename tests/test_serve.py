"""`viscoder serve` with the tiny model on loopback, used through the openai backend: streaming,
the token, a client that disconnects, two kernels at once, discovery and start on demand, and the
requests it refuses (web pages reach loopback too: DNS rebinding)."""

from __future__ import annotations

import asyncio
import contextlib
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
from viscoder_jupyter.core.errors import BackendFailed, BackendUnavailable
from viscoder_jupyter.tools.serve_requests import MAX_BODY_BYTES, MAX_PROMPT_CHARS

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
    for path in runtime.glob("viscoder-serve-*.json"):
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:  # removed by the server between the listing and the read
            return None
    return None


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
            "--max-queue",
            "1",
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


def post(server, body, token=TOKEN, timeout=30, **headers) -> httpx.Response:
    """A raw POST to /chat/completions: `body` as bytes, or a dict sent as JSON."""
    headers.setdefault("Content-Type", "application/json")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{server['url']}/chat/completions", content=data, headers=headers, timeout=timeout)


def refused(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"]


def test_malformed_values_are_400_never_500(server):
    hello = json.dumps(ask("hello"))
    bodies = [
        f'{{"messages": {hello}, "max_tokens": Infinity}}',
        f'{{"messages": {hello}, "max_tokens": NaN}}',
        f'{{"messages": {hello}, "temperature": -Infinity}}',
        f'{{"messages": {hello}, "max_tokens": 1e400}}',
        f'{{"messages": {hello}, "max_tokens": "10"}}',
        f'{{"messages": {hello}, "max_tokens": 1.5}}',
        f'{{"messages": {hello}, "max_tokens": true}}',
        f'{{"messages": {hello}, "max_tokens": 0}}',
        f'{{"messages": {hello}, "max_tokens": {10**30}}}',
        f'{{"messages": {hello}, "temperature": "hot"}}',
        f'{{"messages": {hello}, "temperature": 1e308, "top_p": 0.9}}',
        f'{{"messages": {hello}, "temperature": 0.5, "top_p": 5}}',
        f'{{"messages": {hello}, "temperature": 0.5, "seed": 1.5}}',
        f'{{"messages": {hello}, "stream": "yes"}}',
        f'{{"messages": {hello}, "stream_options": 3}}',
        f'{{"messages": {hello}, "n": "1"}}',
        f'{{"messages": {hello}, "model": 7}}',
        '{"messages": "hello"}',
        '{"messages": [{"role": "user", "content": 42}]}',
        '{"messages": [{"role": "user", "content": [{"type": "text", "text": 42}]}]}',
        '{"messages": [{"role": "root", "content": "x"}]}',
        '{"messages": [null]}',
        "[1, 2]",
        '"just a string"',
        "{not json",
        "[" * 100_000 + "]" * 100_000,
    ]
    for body in [*bodies, b'{"messages": "\xff\xfe"}', b"\xff\xfe{}"]:  # not UTF-8
        response = post(server, body if isinstance(body, bytes) else body.encode())
        assert response.status_code == 400, (body[:80], response.status_code, response.text[:200])
        assert response.json()["error"]["type"] == "invalid_request_error"
    assert idle(server)["active"] == 0


def test_web_pages_and_oversized_requests_are_refused(server):
    models = f"{server['url']}/models"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    # DNS rebinding: a page's own name pointed at 127.0.0.1 reaches the port, and sends its Host.
    for host in ("evil.example", "evil.example:80", "127.0.0.1.evil.example", "localhost.evil.example"):
        refused(httpx.get(models, headers={**auth, "Host": host}), 403, "is not a loopback name")
        refused(httpx.get(server["url"][:-3] + "/health", headers={"Host": host}), 403, "--allow-host")
        refused(post(server, {"messages": ask("x")}, Host=host), 403, "loopback")
    port = server["url"].rsplit(":", 1)[1].split("/")[0]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "localhost"):
        assert httpx.get(models, headers={**auth, "Host": host}).status_code == 200
    # A page can send text/plain across origins without asking first; JSON it cannot.
    refused(post(server, {"messages": ask("x")}, **{"Content-Type": "text/plain"}), 415, "application/json")
    refused(post(server, {"messages": ask("x")}, **{"Content-Type": "application/x-www-form-urlencoded"}), 415, "")
    refused(post(server, {"messages": ask("x")}, token=""), 401, "bearer token")
    refused(post(server, b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}"), 413, "The body is over")
    long = "x" * (MAX_PROMPT_CHARS + 1)
    refused(post(server, {"messages": ask(long)}), 400, f"The conversation is {MAX_PROMPT_CHARS + 1:,} characters")
    with pytest.raises(BackendUnavailable, match="rejected the request.*HTTP 400.*--max-prompt-chars"):
        asyncio.run(client(server).async_generate(ask(long)))  # what a notebook shows
    assert idle(server)  # none of them reached the model


def test_a_full_queue_answers_429(server):
    async def main():
        chunks = []
        long = asyncio.ensure_future(client(server, max_new_tokens=CAP).async_generate(ask("long one"), chunks.append))
        while not chunks:
            await asyncio.sleep(0.02)
        queued = asyncio.ensure_future(client(server, max_new_tokens=CAP).async_generate(ask("waits")))
        try:
            await asyncio.to_thread(wait_for, lambda: health(server)["queued"] == 1, 30, "the queued request")
            # --max-queue 1: one generating, one waiting; the next is told at once, not queued.
            response = await asyncio.to_thread(post, server, {"messages": ask("one too many")}, TOKEN, 10)
            refused(response, 429, "1 requests are already waiting")
            with pytest.raises(BackendFailed, match="busy \\(HTTP 429"):
                await client(server, max_new_tokens=5).async_generate(ask("also too many"))
        finally:
            for task in (queued, long):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    asyncio.run(main())
    wait_for(lambda: idle(server), 30, "the server to be idle")
    assert asyncio.run(client(server, max_new_tokens=3).async_generate(ask("room again"))).completion_tokens == 3


def test_a_random_token_by_default_found_by_this_users_kernels(tiny_model_dir, tmp_path, monkeypatch):
    env = {k: v for k, v in os.environ.items() if k != "VISCODER_SERVE_TOKEN"}
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path)
    command = [sys.executable, "-m", "viscoder_jupyter.tools.cli", "serve", "--model", str(tiny_model_dir)]
    command += ["--quantization", "none", "--device", "cpu"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        info = wait_for(lambda: discovered(tmp_path) or process.poll() is not None, 120, "the server")
        assert process.poll() is None, process.stdout.read()
        line = process.stdout.readline()
        token = info["token"]
        assert len(token) >= 32 and f"token {token} (printed once" in line
        path = tmp_path / f"viscoder-serve-{process.pid}.json"
        assert path.stat().st_mode & 0o777 == 0o600
        assert httpx.get(f"{info['url']}/models").status_code == 401
        monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
        # The URL alone, no key: the token comes from the discovery file.
        reply = asyncio.run(OpenAIBackend(info["url"], str(tiny_model_dir), max_new_tokens=3).async_generate(ask("hi")))
        assert reply.completion_tokens == 3
        stop(process.pid, tmp_path)
        assert token not in process.stdout.read()  # printed once
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
