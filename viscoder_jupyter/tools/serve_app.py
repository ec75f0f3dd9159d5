"""The HTTP side of `viscoder serve` (tools/serve.py): the shared `Server` state and queue, and
the tornado handlers for /health, /v1/models and /v1/chat/completions.

Every request passes one guard first (Host, token, content type, body size; serve_requests.py).
Importing this module imports neither torch nor tornado.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from ..core.errors import BackendUnavailable
from .serve_requests import MAX_BODY_BYTES, MAX_PROMPT_CHARS, MAX_QUEUE, BadRequest, host_allowed, is_json, parse_chat

#: While a request waits in the queue, an SSE comment goes out this often (client read timeouts).
KEEPALIVE_S = 5.0


# --------------------------------------------------------------------------- the server


class Server:
    """What the handlers share: the backend settings, the queue, the token, counters."""

    def __init__(
        self,
        model: str,
        quantization: str,
        token: str,
        max_new_tokens: int,
        idle_exit_s: float = 0.0,
        *,
        allowed_hosts: Sequence[str] = (),
        max_prompt_chars: int = MAX_PROMPT_CHARS,
        max_queue: int = MAX_QUEUE,
    ):
        from ..backends.hf_hub import resolve_model

        if not token:
            raise ValueError("viscoder serve needs a token")
        self.model, self.quantization = model, quantization
        self.ref, _ = resolve_model(model)
        self.names = {model, self.ref, Path(self.ref).name}
        self.token, self.max_new_tokens = token, max_new_tokens
        self.allowed_hosts = {h.strip().lower().rstrip(".") for h in allowed_hosts}
        self.max_prompt_chars, self.max_queue = max_prompt_chars, max_queue
        self.queue = asyncio.Lock()  # waiters are woken in arrival order
        self.idle_exit_s, self.last_activity = idle_exit_s, time.monotonic()
        self.stats = {
            "requests": 0,
            "completed": 0,
            "cancelled": 0,
            "failed": 0,
            "queued": 0,
            "active": 0,
            "max_active": 0,
        }

    def backend(self, max_tokens: int):
        from ..backends.transformers import TransformersBackend

        # Thin per-request instance: the model (and its prefix cache) is shared in hf_models.
        return TransformersBackend(self.ref, self.quantization, max_new_tokens=max_tokens)

    def authorized(self, header: str | None) -> bool:
        scheme, _, value = (header or "").partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(value.strip().encode(), self.token.encode())

    def full(self) -> bool:
        """Every place in the queue is taken (one generating, `max_queue` waiting)."""
        return self.queue.locked() and self.stats["queued"] >= self.max_queue

    async def generate(self, messages, max_tokens: int, on_text=None, sampling=None):
        """Queue, then generate; cancelling (a client gone) frees the slot at once."""
        self.stats["queued"] += 1
        waiting = True
        try:
            async with self.queue:
                self.stats["queued"] -= 1
                waiting = False
                self.stats["active"] += 1
                self.stats["max_active"] = max(self.stats["max_active"], self.stats["active"])
                try:
                    backend = self.backend(max_tokens)
                    reply = await backend.async_generate(messages, on_text, sampling=sampling)
                finally:
                    self.stats["active"] -= 1
                    self.last_activity = time.monotonic()
        except asyncio.CancelledError:
            self.stats["cancelled"] += 1
            raise
        except Exception:
            self.stats["failed"] += 1
            raise
        finally:
            if waiting:
                self.stats["queued"] -= 1
        self.stats["completed"] += 1
        return reply, ("length" if backend.last_stop_reason == "length" else "stop")


def _error(kind: str, message: str, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "code": code}}


def _sampling(request):
    """A Sampling for `temperature` > 0, else None (greedy)."""
    from ..backends.base import Sampling

    if request.temperature <= 0:
        return None
    return Sampling(request.temperature, request.top_p, request.seed)


def make_app(server: Server):
    import tornado.iostream
    import tornado.web

    @tornado.web.stream_request_body  # the body is read here, and no further than MAX_BODY_BYTES
    class Base(tornado.web.RequestHandler):
        body_parts: list[bytes]
        declared = received = 0

        def fail(self, status: int, kind: str, message: str, code: str | None = None):
            self.set_status(status)
            self.set_header("Content-Type", "application/json")
            self.finish(_error(kind, message, code))

        def prepare(self):
            self.body_parts = []
            headers = self.request.headers
            if not host_allowed(self.request.host, server.allowed_hosts):
                return self.fail(
                    403,
                    "permission_error",
                    f"Host {self.request.host!r} is not a loopback name: this server answers only "
                    "127.0.0.1, localhost and ::1 (a web page may point a name of its own at this machine). "
                    "Start it with --allow-host NAME to serve another name.",
                )
            if self.request.path.startswith("/v1/") and not server.authorized(headers.get("Authorization")):
                return self.fail(401, "authentication_error", "Missing or wrong bearer token.", "invalid_api_key")
            if self.request.method == "POST" and not is_json(headers.get("Content-Type")):
                return self.fail(415, "invalid_request_error", "Send the body as Content-Type: application/json.")
            with contextlib.suppress(ValueError):
                self.declared = int(headers.get("Content-Length", 0))

        def data_received(self, chunk: bytes):
            # Past the cap the rest is read and dropped (not kept), so the client gets its 413.
            self.received += len(chunk)
            if max(self.declared, self.received) <= MAX_BODY_BYTES:
                self.body_parts.append(chunk)

        def body(self) -> bytes:
            if max(self.declared, self.received) > MAX_BODY_BYTES:
                raise BadRequest(413, f"The body is over {MAX_BODY_BYTES:,} bytes", "request_too_large")
            return b"".join(self.body_parts)

    class Health(Base):
        def get(self):
            self.finish({"status": "ok", "model": server.model, **server.stats})

    class Models(Base):
        def get(self):
            self.finish(
                {
                    "object": "list",
                    "data": [{"id": server.model, "object": "model", "owned_by": "viscoder", "root": server.ref}],
                }
            )

    class Chat(Base):
        task: asyncio.Task | None = None

        def on_connection_close(self):
            if self.task is not None:
                self.task.cancel()  # the client is gone: leave the queue, or stop generating

        async def post(self):
            try:
                request = parse_chat(self.body(), server.max_prompt_chars)
            except BadRequest as exc:
                return self.fail(exc.status, exc.kind, f"Bad request: {exc}.")
            if request.model and request.model not in server.names:
                return self.fail(
                    404,
                    "invalid_request_error",
                    f"This server serves {server.model!r}, not {request.model!r}.",
                    "model_not_found",
                )
            if server.full():
                return self.fail(
                    429,
                    "rate_limit_error",
                    f"{server.max_queue} requests are already waiting for the model; try again in a moment.",
                )
            server.stats["requests"] += 1
            limit = max(1, min(request.max_tokens or server.max_new_tokens, server.max_new_tokens))
            ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
            messages, sampling = request.messages, _sampling(request)
            if request.stream:
                await self.stream(messages, limit, ident, created, request.include_usage, sampling)
            else:
                await self.whole(messages, limit, ident, created, sampling)

        def chunk(self, ident, created, delta, finish=None, usage=None) -> str:
            data = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": server.model,
                "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            if usage:
                data["usage"] = usage
            return f"data: {json.dumps(data)}\n\n"

        async def whole(self, messages, limit, ident, created, sampling=None):
            self.task = asyncio.ensure_future(server.generate(messages, limit, sampling=sampling))
            try:
                reply, finish = await self.task
            except asyncio.CancelledError:
                return
            except BackendUnavailable as exc:
                return self.fail(503, "server_error", str(exc))
            self.finish(
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": server.model,
                    "usage": _usage(reply),
                    "choices": [
                        {"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": reply.text}}
                    ],
                }
            )

        async def stream(self, messages, limit, ident, created, include_usage, sampling=None):
            loop = asyncio.get_running_loop()
            deltas: asyncio.Queue = asyncio.Queue()

            def on_text(text):
                loop.call_soon_threadsafe(deltas.put_nowait, text)

            self.set_header("Content-Type", "text/event-stream")
            self.set_header("Cache-Control", "no-cache")
            self.task = asyncio.ensure_future(server.generate(messages, limit, on_text, sampling))
            try:
                self.write(self.chunk(ident, created, {"role": "assistant", "content": ""}))
                await self.flush()
                while True:
                    getter = asyncio.ensure_future(deltas.get())
                    await asyncio.wait({getter, self.task}, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED)
                    if getter.done():
                        self.write(self.chunk(ident, created, {"content": getter.result()}))
                        await self.flush()
                        continue
                    getter.cancel()
                    if self.task.done():
                        break
                    self.write(": waiting\n\n")  # queued: keeps the client's read timeout at bay
                    await self.flush()
                while not deltas.empty():  # all of on_text's calls ran before the task finished
                    self.write(self.chunk(ident, created, {"content": deltas.get_nowait()}))
                reply, finish = self.task.result()
            except (tornado.iostream.StreamClosedError, asyncio.CancelledError):
                self.task.cancel()
                return
            except Exception as exc:  # noqa: BLE001 - the stream has begun: report in-band
                self.write(f"data: {json.dumps(_error('server_error', str(exc)))}\n\n")
                return self.finish()
            self.write(self.chunk(ident, created, {}, finish))
            if include_usage:
                self.write(self.chunk(ident, created, {}, usage=_usage(reply)))
            self.write("data: [DONE]\n\n")
            self.finish()

    return tornado.web.Application([(r"/health", Health), (r"/v1/models", Models), (r"/v1/chat/completions", Chat)])


def _usage(reply) -> dict:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }
