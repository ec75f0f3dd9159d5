"""The openai backend's protocol handling, against a small scripted server on loopback: streaming,
the stop at the closing fence, and one clear message for each way a server can fail.
(The backend against the real `viscoder serve` is in test_serve.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from viscoder_jupyter.backends import backend_class
from viscoder_jupyter.backends.discovery import find_servers, token_for, write_discovery
from viscoder_jupyter.backends.openai import (
    OpenAIBackend,
    normalize_base_url,
)
from viscoder_jupyter.core.errors import BackendFailed, BackendUnavailable
from viscoder_jupyter.core.settings import VisCoder

MESSAGES = [{"role": "user", "content": "bar chart of the revenue of each region"}]
REPLY = [
    "Here",
    ":\n",
    "```",
    "python",
    "\n",
    "plt.bar(x, y)",
    "\n",
    "plt.show()",
    "\n",
    "```",
    "\n",
    "This code",
    " draws",
    " a bar chart.",
]


class Script(BaseHTTPRequestHandler):
    """Answers /v1/chat/completions as `server.mode` says; records what it saw."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/v1/models":
            self.reply_json(200, {"object": "list", "data": [{"id": "served-model"}]})

    def do_POST(self):
        seen = self.server.seen
        seen["body"] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        seen["auth"] = self.headers.get("Authorization")
        mode = self.server.mode
        if mode.startswith("http"):
            status = int(mode[4:])
            return self.reply_json(status, {"error": {"message": f"scripted {status}", "type": "x"}})
        if mode == "hang":
            time.sleep(3)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.chunk(": keep-alive comment\n\n")
        pieces = self.server.reply[:3] if mode == "die" else self.server.reply
        try:
            for i, text in enumerate(pieces):
                if mode == "error-event" and i == 2:
                    self.chunk('data: {"error": {"message": "CUDA out of memory"}}\n\n')
                    break
                delta = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
                self.chunk(f"data: {json.dumps(delta)}\n\n")
                if "".join(pieces[: i + 1]).count("```") == 2 and self.client_closes():
                    seen["client_left"] = True  # at the closing fence, as it should
                    return
                time.sleep(0.02)
            if mode == "die":  # the process dies: the socket closes mid-body
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if mode != "no-done":
                self.chunk('data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n')
                self.chunk('data: {"choices": [], "usage": {"prompt_tokens": 21, "completion_tokens": 14}}\n\n')
                self.chunk("data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            seen["completed"] = True
        except (BrokenPipeError, ConnectionResetError):
            seen["client_left"] = True
        finally:
            self.server.answered.set()

    def client_closes(self, seconds: float = 30) -> bool:
        """Whether the client closes the connection within `seconds` (it has nothing more to
        send): what a client that stops reading does, told apart from one still reading."""
        ready, _, _ = select.select([self.connection], [], [], seconds)
        return bool(ready) and self.connection.recv(1, socket.MSG_PEEK) == b""

    def chunk(self, text: str):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def reply_json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Script)
    httpd.daemon_threads = True
    httpd.mode, httpd.seen, httpd.reply = "ok", {}, list(REPLY)
    httpd.answered = threading.Event()  # set when a chat completion's handler has finished
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def generate(backend, on_text=None):
    return asyncio.run(backend.async_generate(MESSAGES, on_text))


def test_streams_greedily_and_stops_at_the_closing_fence(server):
    backend = OpenAIBackend(server.url, "served-model", api_key="sk-test", max_new_tokens=300)
    chunks = []
    reply = generate(backend, chunks.append)
    assert reply.text == "Here:\n```python\nplt.bar(x, y)\nplt.show()\n```"
    assert "".join(chunks) == reply.text and backend.last_stop_reason == "fence"
    body = server.seen["body"]
    assert body["stream"] is True and body["temperature"] == 0 and body["max_tokens"] == 300
    assert body["model"] == "served-model" and body["messages"] == MESSAGES
    assert server.seen["auth"] == "Bearer sk-test"
    # The server waits at the closing fence for the client to close the stream (a client reading
    # on instead gets the rest of the reply: "completed").
    assert server.answered.wait(60)
    assert server.seen.get("client_left") and not server.seen.get("completed")


def test_a_reply_without_fence_reads_to_done_with_usage(server):
    server.reply = ["no code", " at all"]
    reply = generate(OpenAIBackend(server.url, "served-model"))
    assert reply.text == "no code at all" and reply.prompt_tokens == 21 and reply.completion_tokens == 14
    assert server.seen["auth"] is None  # no key, no header


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("http401", ["refused the request (HTTP 401: scripted 401)", "VISCODER_API_KEY"]),
        ("http404", ["HTTP 404 for model 'wrong-model'", "It serves: served-model"]),
        ("http429", ["busy (HTTP 429", BackendFailed]),
        ("http400", ["rejected the request (HTTP 400: scripted 400)"]),
        ("http500", ["failed (HTTP 500: scripted 500)", BackendFailed]),
        ("die", ["stopped in the middle of the reply", "characters received", BackendFailed]),
        ("no-done", ["stopped in the middle of the reply", "without [DONE]", BackendFailed]),
        ("error-event", ["reported an error mid-reply: CUDA out of memory", BackendFailed]),
    ],
)
def test_each_failure_is_one_clear_message_and_a_retry_works(server, mode, expected):
    backend = OpenAIBackend(server.url, "wrong-model" if mode == "http404" else "served-model")
    server.mode = mode
    if mode == "no-done":  # no fence either, so the client reads on to the (clean) end
        server.reply = ["no code", " at all"]
    with pytest.raises(BackendUnavailable) as info:
        generate(backend)
    message = str(info.value)
    assert server.url in message
    for part in expected:  # text in the message; an error class: worth a retry, which front ends offer
        assert isinstance(info.value, part) if isinstance(part, type) else part in message
    assert "\n" not in message and "Traceback" not in message
    server.mode, server.reply = "ok", list(REPLY)
    if mode != "http404":
        assert generate(backend).text.endswith("```")  # the same backend, retried


def test_unreachable_and_slow_servers(server):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BackendUnavailable, match=r"Cannot reach the model server at http://127.0.0.1:\d+/v1.*base_url"):
        generate(OpenAIBackend(f"http://127.0.0.1:{port}", "m"))
    server.mode = "hang"
    with pytest.raises(BackendUnavailable, match=r"did not answer within 0.5 s \(waiting for the reply\)"):
        generate(OpenAIBackend(server.url, "m", read_timeout=0.5))


def test_cancelling_closes_the_stream(server):
    server.reply = [f"token{i} " for i in range(200)]

    async def main():
        chunks = []
        task = asyncio.ensure_future(OpenAIBackend(server.url, "m").async_generate(MESSAGES, chunks.append))
        while len(chunks) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return chunks

    chunks = asyncio.run(main())
    deadline = time.monotonic() + 5
    while not server.seen.get("client_left") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.seen.get("client_left") and len(chunks) < 20


def test_settings_and_urls():
    assert backend_class("openai") is OpenAIBackend
    settings = VisCoder(
        backend="openai", base_url="http://gpu-box:8000", model="TIGER-Lab/VisCoder-7B", api_key="k", max_new_tokens=512
    )
    backend = OpenAIBackend.from_settings(settings)
    assert (backend.base_url, backend.model, backend.api_key, backend.max_new_tokens) == (
        "http://gpu-box:8000/v1",
        "TIGER-Lab/VisCoder-7B",
        "k",
        512,
    )
    assert normalize_base_url("http://h:1/v1/chat/completions") == "http://h:1/v1"
    assert normalize_base_url("https://h/api/v1/") == "https://h/api/v1"
    with pytest.raises(BackendUnavailable, match="needs a server URL.*auto"):
        OpenAIBackend.from_settings(VisCoder(backend="openai", base_url=""))
    with pytest.raises(BackendUnavailable, match="not an http"):
        OpenAIBackend("gpu-box:8000", "m")


def announce(path, info, mode=0o600) -> dict:
    """A discovery file as `viscoder serve` writes it (this user's, mode 0600), or as told."""
    path.write_text(info if isinstance(info, str) else json.dumps(info))
    path.chmod(mode)
    return info


def test_discovery_skips_and_removes_files_of_dead_servers(tmp_path):
    dead = tmp_path / "viscoder-serve-999999999.json"
    announce(dead, {"url": "http://127.0.0.1:1/v1", "model_ref": "m", "pid": 999999999})
    alive = tmp_path / f"viscoder-serve-{os.getpid()}.json"
    announce(alive, {"url": "http://127.0.0.1:2/v1", "model_ref": "m", "pid": os.getpid()})
    announce(tmp_path / "viscoder-serve-broken.json", "{not json")
    assert [info["pid"] for info in find_servers(tmp_path)] == [os.getpid()]
    assert not dead.exists() and alive.exists()


GOOD = {"url": "http://127.0.0.1:8123/v1", "model_ref": "m", "pid": os.getpid(), "token": "t0ken"}


@pytest.mark.parametrize(
    "why, info, mode, owner",
    [
        ("readable by others", GOOD, 0o644, None),
        ("writable by the group", GOOD, 0o620, None),
        ("another user's", GOOD, 0o600, 12345),
        ("a remote host", {**GOOD, "url": "http://evil.example:8123/v1"}, 0o600, None),
        ("a LAN address", {**GOOD, "url": "http://192.168.1.20:8123/v1"}, 0o600, None),
        ("https elsewhere", {**GOOD, "url": "https://127.0.0.1.evil.example/v1"}, 0o600, None),
        ("not JSON", "{not json", 0o600, None),
        ("a list", "[1, 2]", 0o600, None),
        ("pid a string", {**GOOD, "pid": str(os.getpid())}, 0o600, None),
        ("pid a bool", {**GOOD, "pid": True}, 0o600, None),
        ("no url", {k: v for k, v in GOOD.items() if k != "url"}, 0o600, None),
        ("token a number", {**GOOD, "token": 123}, 0o600, None),
        ("a port that is not a number", {**GOOD, "url": "http://127.0.0.1:x/v1"}, 0o600, None),
    ],
)
def test_discovery_ignores_files_it_cannot_trust(tmp_path, why, info, mode, owner):
    # Where prompts (the user's data) go, and with which token: only this user's own file says.
    path = tmp_path / "viscoder-serve-1.json"
    announce(path, info, mode)
    if owner is not None:
        if os.getuid() != 0:
            pytest.skip("giving a file to another user needs root")
        os.chown(path, owner, -1)
    assert find_servers(tmp_path) == [] and token_for(GOOD["url"], tmp_path) == ""
    assert path.exists()  # not removed either: only this user's files of dead servers are
    path.chmod(0o600)
    if owner is None and why.startswith(("readable", "writable")):  # the same file, made private
        assert find_servers(tmp_path) == [GOOD] and token_for(GOOD["url"], tmp_path) == "t0ken"


def test_discovery_ignores_a_symlink_and_writes_through_none(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    target = tmp_path / "elsewhere.json"
    announce(target, GOOD)
    (tmp_path / "viscoder-serve-2.json").symlink_to(target)
    assert find_servers(tmp_path) == []
    # Links planted where the server writes its file: the victims stay as they were.
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for name in (f"viscoder-serve-{os.getpid()}.json", f"viscoder-serve-{os.getpid()}.tmp"):
        (tmp_path / name).symlink_to(victim)
    path = write_discovery(GOOD)
    assert victim.read_text() == "precious" and not path.is_symlink()
    assert path.stat().st_mode & 0o777 == 0o600 and json.loads(path.read_text()) == GOOD
    assert find_servers(tmp_path) == [GOOD]
    assert write_discovery({**GOOD, "token": "new"}) == path  # our own file: replaced
    assert token_for(GOOD["url"], tmp_path) == "new"


def test_discovery_refuses_to_replace_another_users_file(tmp_path, monkeypatch):
    if os.getuid() != 0:
        pytest.skip("giving a file to another user needs root")
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    path = tmp_path / f"viscoder-serve-{os.getpid()}.json"
    announce(path, {**GOOD, "url": "http://127.0.0.1:1/v1"})
    os.chown(path, 12345, -1)
    with pytest.raises(BackendUnavailable, match="is not this user's file; remove it"):
        write_discovery(GOOD)
