"""`viscoder serve`: one process owns the model and serves it to every notebook.

An OpenAI-compatible server (``/v1/chat/completions``, streaming or not, and ``/v1/models``)
over the in-process transformers backend, so a model loads once instead of once per kernel.

- Binds to 127.0.0.1 unless told otherwise. Every API request needs ``Authorization: Bearer
  <token>``: ``--token`` (or VISCODER_SERVE_TOKEN), else a random one, printed once and kept in
  the discovery file, where this user's kernels read it.
- Web pages can reach loopback too (DNS rebinding), and other users of the machine: only Host
  headers that name loopback (or ``--allow-host``) and JSON bodies are served; the body, the
  prompt and the queue are capped (413, 400, 429), and a malformed field is a 400
  (serve_requests.py).
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
import os
import secrets
import signal
import sys
import time
from collections.abc import Sequence

from ..backends.discovery import TOKEN_ENV, is_loopback, write_discovery
from ..core.errors import BackendUnavailable
from .serve_app import Server, make_app
from .serve_requests import MAX_PROMPT_CHARS, MAX_QUEUE

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
        help="address to bind (default 127.0.0.1: this machine only); clients elsewhere also need --allow-host",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host header to serve besides 127.0.0.1, localhost and ::1 (this machine's name for "
        "clients elsewhere; repeatable). Other names are refused: a web page can point its own name at this machine",
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
        help=f"bearer token clients must send (default: ${TOKEN_ENV}, else a random one, printed once and "
        "kept in the discovery file, mode 0600)",
    )
    add_setting_flags(parser, ["max_new_tokens"])
    parser.add_argument(
        "--max-prompt-chars",
        type=int,
        default=MAX_PROMPT_CHARS,
        help=f"longest conversation accepted, in characters (default {MAX_PROMPT_CHARS:,}); longer: HTTP 400",
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=MAX_QUEUE,
        help=f"requests that may wait while one generates (default {MAX_QUEUE}); more: HTTP 429",
    )
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

    generated = not args.token
    token = args.token or secrets.token_urlsafe(32)
    allowed = list(args.allow_host)
    if args.host not in ("0.0.0.0", "", "::"):
        allowed.append(args.host)  # the address it was bound to, as clients name it
    server = Server(
        args.model,
        args.quantization,
        token,
        args.max_new_tokens,
        args.idle_exit,
        allowed_hosts=allowed,
        max_prompt_chars=args.max_prompt_chars,
        max_queue=args.max_queue,
    )
    sockets = tornado.netutil.bind_sockets(args.port, args.host)  # fails now if the port is taken
    started = time.perf_counter()
    loaded = await asyncio.to_thread(server.backend(1).load)  # before announcing: no half-ready server
    http = tornado.httpserver.HTTPServer(make_app(server), idle_connection_timeout=3600)
    http.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    host = "127.0.0.1" if args.host in ("0.0.0.0", "", "::", "localhost") else args.host
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/v1"
    discovery = None
    if is_loopback(host):  # kernels believe only a loopback address (discovery.py)
        info = {"url": url, "model": args.model, "model_ref": server.ref, "pid": os.getpid(), "token": token}
        discovery = write_discovery({**info, "started": time.time()})
    where = loaded.options["device"] + (" 4-bit" if loaded.options["load_in_4bit"] else f" {loaded.options['dtype']}")
    print(
        f"viscoder serve: {args.model} ({where}, loaded in {time.perf_counter() - started:.1f} s) at {url}, "
        + (f"token {token} (printed once" if generated else "bearer token required (yours")
        + (f"; this user's kernels read it from {discovery})" if discovery else ")"),
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
        if discovery is not None:
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
