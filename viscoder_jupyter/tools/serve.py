"""`viscoder serve`: one process owns the model and serves it to every notebook.

An OpenAI-compatible server (``/v1/chat/completions``, streaming or not, and ``/v1/models``)
over the in-process transformers backend, so a model loads once instead of once per kernel.

- Binds to 127.0.0.1 unless told otherwise; with ``--token`` (or VISCODER_SERVE_TOKEN) every
  API request needs ``Authorization: Bearer <token>``.
- One generation at a time, first come first served (an asyncio.Lock queues fairly); a client
  that disconnects, while queued or while its reply is written, is cancelled at once, so the
  next request starts within a token. The transformers backend's prefix cache lets each
  client's self-debug turn reuse its own conversation's keys/values.
- Replies stop where the first python code block closes, like the in-process backend;
  decoding is greedy unless the request asks for ``temperature`` > 0 (then ``top_p`` and
  ``seed`` apply too: the self-debug loop samples when greedy retries repeat themselves).
- A discovery file in the Jupyter runtime dir (``viscoder-serve-<pid>.json``, mode 0600: it
  holds the token) lets every kernel find the running server: the openai backend's
  ``base_url = "auto"`` (backends/discovery.py) finds it, or starts one on demand.

Importing this module imports neither torch nor tornado.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from ..backends.discovery import TOKEN_ENV, write_discovery
from ..core.errors import BackendUnavailable

#: While a request waits in the queue, an SSE comment goes out this often (client read timeouts).
KEEPALIVE_S = 5.0


# --------------------------------------------------------------------------- the server


class Server:
    """What the handlers share: the backend settings, the queue, the token, counters."""

    def __init__(self, model: str, quantization: str, token: str, max_new_tokens: int, idle_exit_s: float = 0.0):
        from ..backends.hf_hub import resolve_model

        self.model, self.quantization = model, quantization
        self.ref, _ = resolve_model(model)
        self.names = {model, self.ref, Path(self.ref).name}
        self.token, self.max_new_tokens = token, max_new_tokens
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
        if not self.token:
            return True
        scheme, _, value = (header or "").partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(value.strip(), self.token)

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


def _sampling(body: dict):
    """A Sampling for `temperature` > 0, else None (greedy)."""
    from ..backends.base import Sampling

    temperature = float(body.get("temperature") or 0)
    if temperature <= 0:
        return None
    return Sampling(temperature, float(body.get("top_p") or 1.0), int(body.get("seed") or 0))


def _messages(body: dict) -> list[dict[str, str]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list")
    out = []
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str) or m.get("role") not in ("system", "user", "assistant"):
            raise ValueError("each message needs a role (system, user, assistant) and text content")
        out.append({"role": m["role"], "content": content})
    return out


def make_app(server: Server):
    import tornado.iostream
    import tornado.web

    class Base(tornado.web.RequestHandler):
        def fail(self, status: int, kind: str, message: str, code: str | None = None):
            self.set_status(status)
            self.set_header("Content-Type", "application/json")
            self.finish(_error(kind, message, code))

        def prepare(self):
            if self.request.path.startswith("/v1/") and not server.authorized(
                self.request.headers.get("Authorization")
            ):
                self.fail(401, "authentication_error", "Missing or wrong bearer token.", "invalid_api_key")

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
                body = json.loads(self.request.body or b"{}")
                messages = _messages(body)
                if body.get("n", 1) != 1:
                    raise ValueError("only n=1 is supported")
                limit = int(body.get("max_completion_tokens") or body.get("max_tokens") or server.max_new_tokens)
                sampling = _sampling(body)
            except (ValueError, TypeError, AttributeError) as exc:
                return self.fail(400, "invalid_request_error", f"Bad request: {exc}.")
            if body.get("model") and body["model"] not in server.names:
                return self.fail(
                    404,
                    "invalid_request_error",
                    f"This server serves {server.model!r}, not {body['model']!r}.",
                    "model_not_found",
                )
            server.stats["requests"] += 1
            limit = max(1, min(limit, server.max_new_tokens))
            ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
            if body.get("stream"):
                usage = bool((body.get("stream_options") or {}).get("include_usage"))
                await self.stream(messages, limit, ident, created, usage, sampling)
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


# --------------------------------------------------------------------------- command line


def make_parser() -> argparse.ArgumentParser:
    """--model, --quantization and --max-new-tokens are the settings' (default, choices, help)."""
    from ..core.setting_flags import add_setting_flags

    parser = argparse.ArgumentParser(
        prog="viscoder serve",
        description="Serve one model to every notebook through an OpenAI-compatible API "
        "(/v1/chat/completions with streaming, /v1/models). Kernels on this machine find "
        "it through a file in the Jupyter runtime dir (%config VisCoder.backend = 'openai', "
        "VisCoder.base_url = 'auto').",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine only); use a --token with any other",
    )
    parser.add_argument("--port", type=int, default=0, help="port (default 0: any free port; printed)")
    add_setting_flags(parser, ["model"])
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA when available, else the CPU"
    )
    add_setting_flags(parser, ["quantization"])
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV, ""),
        help=f"bearer token clients must send (default: ${TOKEN_ENV}; none: open)",
    )
    add_setting_flags(parser, ["max_new_tokens"])
    parser.add_argument(
        "--idle-exit",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="exit after this long without requests (default 0: never)",
    )
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    return make_parser().parse_args(argv)


async def serve(args: argparse.Namespace) -> int:
    import tornado.httpserver
    import tornado.netutil

    server = Server(args.model, args.quantization, args.token, args.max_new_tokens, args.idle_exit)
    sockets = tornado.netutil.bind_sockets(args.port, args.host)  # fails now if the port is taken
    started = time.perf_counter()
    loaded = await asyncio.to_thread(server.backend(1).load)  # before announcing: no half-ready server
    http = tornado.httpserver.HTTPServer(make_app(server), idle_connection_timeout=3600)
    http.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    host = "127.0.0.1" if args.host in ("0.0.0.0", "", "::", "localhost") else args.host
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/v1"
    discovery = write_discovery(
        {
            "url": url,
            "model": args.model,
            "model_ref": server.ref,
            "pid": os.getpid(),
            "token": args.token,
            "started": time.time(),
        }
    )
    where = loaded.options["device"] + (" 4-bit" if loaded.options["load_in_4bit"] else f" {loaded.options['dtype']}")
    print(
        f"viscoder serve: {args.model} ({where}, loaded in {time.perf_counter() - started:.1f} s) "
        f"at {url}{' (bearer token required)' if args.token else ''}",
        flush=True,
    )
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.token:
        print(
            "warning: listening beyond this machine without --token: anyone who can reach it can use the model",
            file=sys.stderr,
            flush=True,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=5.0)
            idle = not (server.stats["active"] or server.stats["queued"])
            if server.idle_exit_s and idle and time.monotonic() - server.last_activity > server.idle_exit_s:
                print("viscoder serve: idle, exiting", flush=True)
                break
    finally:
        with contextlib.suppress(OSError):
            discovery.unlink()
        http.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch is imported: the CPU even where CUDA is
    elif args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("error: --device cuda, but torch sees no CUDA GPU", file=sys.stderr)
            return 1
    try:
        return asyncio.run(serve(args))
    except BackendUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the port is taken, the address does not exist here
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
