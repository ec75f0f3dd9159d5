"""A Hugging Face hub on 127.0.0.1 serving real model files, slowly enough to watch.

The hub itself cannot be reached here, so this stands in for it: it answers exactly the
requests huggingface_hub 2.x makes for a model repository (read from its source,
file_download.py and _snapshot_download.py):

- ``GET /api/models/{repo}/revision/{rev}``: the commit (``sha``) and the file list;
- ``GET /api/models/{repo}/tree/{commit}``: each file's path, size and blob id;
- ``HEAD /{repo}/resolve/{rev}/{file}``: ``X-Repo-Commit``, ``ETag`` and ``Content-Length``
  (hf_hub_download's metadata call);
- ``GET /{repo}/resolve/{rev}/{file}``: the bytes, honouring ``Range`` (a resumed download),
  at most `rate` bytes a second.

A file listed in `lfs` is answered as the hub answers a git-lfs file (a GGUF, a safetensors):
``X-Linked-Etag`` is its sha256 and ``X-Linked-Size`` its size, which is what a download is
checked against. `damage` serves a file wrong on purpose: ``"flip"`` changes one byte in the
middle (same size, wrong sha256), ``"truncate"`` hangs up halfway through every download of it.

Point huggingface_hub at it with HF_ENDPOINT (or huggingface_hub.constants.ENDPOINT in a
process that imported it already).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_PIECE = 256 * 1024


class FakeHub:
    def __init__(
        self,
        repos: dict[str, dict[str, Path]],
        rate: float | None = None,
        piece: int = _PIECE,
        lfs: tuple[str, ...] = (".gguf",),
        damage: dict[str, str] | None = None,
    ):
        """`repos`: repo id -> {file name in the repo: local file}. `rate`: bytes/s (None: no
        limit), sent `piece` bytes at a time. `lfs`: endings of the files stored with git-lfs.
        `damage`: file name -> "flip" or "truncate"."""
        self.repos = repos
        self.lfs = lfs
        self.damage = dict(damage or {})
        self.rate = rate
        self.piece = piece
        self.requests: list[tuple[str, str]] = []
        self.served_ranges: list[str] = []
        self.bytes_sent = 0  # file bytes written to clients, all requests together
        self.hangups = 0  # downloads the client stopped before the end
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                hub._answer(self, body=False)

            def do_GET(self):
                hub._answer(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------ answers
    def _answer(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        path = unquote(urlparse(handler.path).path)
        self.requests.append((handler.command, path))
        api = re.fullmatch(r"/api/models/([^/]+/[^/]+)/(revision|tree)/([^/]+)(?:/.*)?", path)
        if api:
            repo, kind, _ = api.groups()
            if repo not in self.repos:
                return self._json(handler, {"error": "Repository not found"}, 404, body)
            files = self.repos[repo]
            if kind == "revision":
                info = {"id": repo, "sha": COMMIT, "siblings": [{"rfilename": name} for name in files]}
                return self._json(handler, info, 200, body)
            tree = [{"type": "file", "path": n, "size": p.stat().st_size, "oid": _oid(p)} for n, p in files.items()]
            return self._json(handler, tree, 200, body)
        resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if not resolve or resolve.group(1) not in self.repos or resolve.group(3) not in self.repos[resolve.group(1)]:
            handler.send_response(404)
            handler.send_header("X-Error-Code", "EntryNotFound")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return None
        file = self.repos[resolve.group(1)][resolve.group(3)]
        size = file.stat().st_size
        start = 0
        wanted = handler.headers.get("Range")
        if wanted and body:
            start = int(re.match(r"bytes=(\d+)-", wanted).group(1))
            self.served_ranges.append(wanted)
        handler.send_response(206 if start else 200)
        handler.send_header("X-Repo-Commit", COMMIT)
        if resolve.group(3).endswith(self.lfs):
            handler.send_header("ETag", f'"{_sha256(file)}"')
            handler.send_header("X-Linked-Etag", f'"{_sha256(file)}"')
            handler.send_header("X-Linked-Size", str(size))
        else:
            handler.send_header("ETag", f'"{_oid(file)}"')
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("Content-Length", str(size - start))
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        handler.end_headers()
        if body:
            self._send_file(handler, file, start, self.damage.get(resolve.group(3)))
        return None

    def _send_file(self, handler, file: Path, start: int, damage: str | None = None) -> None:
        began, sent = time.monotonic(), 0
        middle = file.stat().st_size // 2
        try:
            with open(file, "rb") as f:
                f.seek(start)
                while piece := f.read(self.piece):
                    at = f.tell() - len(piece)
                    if damage == "truncate" and at + len(piece) > middle:  # hang up halfway, every time
                        handler.wfile.write(piece[: max(0, middle - at)])
                        handler.wfile.flush()
                        handler.close_connection = True
                        return
                    if damage == "flip" and at <= middle < at + len(piece):
                        piece = bytearray(piece)
                        piece[middle - at] ^= 0xFF
                        piece = bytes(piece)
                    handler.wfile.write(piece)
                    sent += len(piece)
                    self.bytes_sent += len(piece)
                    if self.rate:
                        ahead = sent / self.rate - (time.monotonic() - began)
                        if ahead > 0:
                            time.sleep(ahead)
        except (BrokenPipeError, ConnectionResetError):  # the client stopped (a cancelled download)
            self.hangups += 1
            handler.close_connection = True

    @staticmethod
    def _json(handler, data, status: int, body: bool) -> None:
        raw = json.dumps(data).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        if body:
            handler.wfile.write(raw)


_OIDS: dict[Path, str] = {}
_SHA256S: dict[Path, str] = {}


def _sha256(path: Path) -> str:
    """What the hub reports for a git-lfs file: the sha256 of its content."""
    if path not in _SHA256S:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(8 << 20):
                digest.update(chunk)
        _SHA256S[path] = digest.hexdigest()
    return _SHA256S[path]


def _oid(path: Path) -> str:
    """A stable id for the file's content (the hub's ETag/blob id): the sha1 of its first MB and size."""
    if path not in _OIDS:
        with open(path, "rb") as f:
            head = f.read(1 << 20)
        _OIDS[path] = hashlib.sha1(head + str(path.stat().st_size).encode()).hexdigest()
    return _OIDS[path]
