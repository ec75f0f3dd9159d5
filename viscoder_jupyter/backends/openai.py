"""Any OpenAI-compatible chat-completions server: vLLM, Ollama, llama.cpp's server, `viscoder serve`.

Streams the reply over server-sent events with httpx (already installed with Jupyter; no
vendor SDK). Greedy (temperature 0) unless a `Sampling` is passed. Stops where the first python code block closes, like
the in-process backend: a `stop` string cannot tell a closing fence from an opening one
(both are a line starting with ```), so the rule runs here, on the streamed text
(`streaming.FenceWatcher`), and the stream is closed, which makes vLLM and `viscoder serve`
abort the generation. Cancelling the coroutine closes the stream too.

Every failure (server not reachable, too slow, HTTP 4xx/5xx, a stream cut mid-reply) is one
`BackendUnavailable` whose message says what happened and what to check; nothing is left
half-open, so running the cell again retries.

``base_url = "auto"`` uses the `viscoder serve` that another kernel of this user started for
the same model (found through the Jupyter runtime dir), and starts one if there is none. A
loopback URL given without an API key gets the token of the `viscoder serve` announced there.

The server applies the chat template to the messages: keeping marker text in them (a column
named "<|im_end|>") plain text is its job. `viscoder serve` does (backends/chat_tokens.py);
another server may parse special tokens in message contents.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, ClassVar

from ..core.errors import BackendFailed, BackendUnavailable
from ..core.settings import setting, setting_default
from .base import Backend, Messages, OnText, Reply, Sampling
from .discovery import is_loopback, start_server, token_for
from .streaming import FenceWatcher

#: Seconds to open a connection, and to wait for each piece of the stream.
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 300.0
_SETUP_HINT = (
    "Set the server with `%config VisCoder.base_url = 'http://HOST:PORT/v1'` (or "
    "VISCODER_BASE_URL), or 'auto' to use (and start if needed) `viscoder serve` on "
    "this machine."
)


def normalize_base_url(url: str) -> str:
    """'http://h:8000' and 'http://h:8000/v1/chat/completions' both become 'http://h:8000/v1'."""
    url = url.strip().rstrip("/")
    url = url.removesuffix("/chat/completions")
    _scheme, sep, rest = url.partition("://")
    if sep and "/" not in rest:
        url += "/v1"
    return url


def served_name(model: str) -> str:
    """The model name sent to the server: no model configured (`auto`, which picks a local
    model by this machine's hardware) asks for VisCoder-7B, as vLLM would serve it."""
    return "TIGER-Lab/VisCoder-7B" if model.strip().lower() == "auto" else model


class OpenAIBackend(Backend):
    """Chat completions from an OpenAI-compatible server, streamed."""

    name: ClassVar[str] = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        max_new_tokens: int = setting_default("max_new_tokens"),
        quantization: str = setting_default("quantization"),
        *,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        read_timeout: float = READ_TIMEOUT_S,
    ):
        if not (base_url or "").strip():
            raise BackendUnavailable("The 'openai' backend needs a server URL. " + _SETUP_HINT)
        self.auto = base_url.strip().lower() == "auto"
        self.base_url = "" if self.auto else normalize_base_url(base_url)
        if not self.auto and not self.base_url.startswith(("http://", "https://")):
            raise BackendUnavailable(f"Server URL {base_url!r} is not an http(s) URL. " + _SETUP_HINT)
        self.model, self.api_key = model, api_key
        self.max_new_tokens, self.quantization = int(max_new_tokens), quantization
        self.timeout = (connect_timeout, read_timeout)
        self.last_stop_reason: str | None = None
        self._auto_lock = threading.Lock()

    def identity(self) -> str:
        return f"{self.name}:{self.base_url}:{self.model}:max{self.max_new_tokens}"

    @classmethod
    def from_settings(cls, settings: Any) -> OpenAIBackend:
        return cls(
            base_url=str(getattr(settings, "base_url", "") or ""),
            model=served_name(str(getattr(settings, "model", "") or "")),
            api_key=str(getattr(settings, "api_key", "") or ""),
            max_new_tokens=int(setting(settings, "max_new_tokens")),
            quantization=str(setting(settings, "quantization")),
        )

    @classmethod
    def cache_key(cls, settings: Any) -> tuple:
        return (
            cls.name,
            str(getattr(settings, "base_url", "")),
            str(getattr(settings, "model", "")),
            str(getattr(settings, "api_key", "")),
            int(setting(settings, "max_new_tokens")),
        )

    # -- where the server is

    def _auto_server(self) -> None:
        """Find (or start) this user's `viscoder serve` for the model; blocking."""
        with self._auto_lock:
            info = start_server(self.model, self.quantization)
            self.base_url, self.api_key = info["url"], info.get("token", "")

    async def async_prepare(self) -> None:
        if self.auto and not self.base_url:
            await asyncio.to_thread(self._auto_server)

    # -- generation

    async def async_generate(
        self, messages: Messages, on_text: OnText | None = None, *, sampling: Sampling | None = None
    ) -> Reply:
        httpx = _httpx()
        await self.async_prepare()
        url = f"{self.base_url}/chat/completions"
        body = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "temperature": 0,
            "max_tokens": self.max_new_tokens,
            "stream_options": {"include_usage": True},
        }
        if sampling is not None:
            body.update(temperature=sampling.temperature, top_p=sampling.top_p, seed=sampling.seed)
        local = is_loopback(httpx.URL(url).host)
        key = self.api_key or (token_for(self.base_url) if local else "")  # our own `viscoder serve`
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        connect, read = self.timeout
        timeout = httpx.Timeout(read, connect=connect)
        stream = _Stream(on_text, f"The model server at {self.base_url}")
        try:
            # Proxy variables apply to remote servers only: a proxy cannot reach our loopback.
            async with httpx.AsyncClient(timeout=timeout, trust_env=not local) as client:
                async with client.stream("POST", url, json=body, headers=headers) as response:
                    if response.status_code >= 400:
                        failed = (
                            BackendFailed
                            if response.status_code in (429,) or response.status_code >= 500
                            else BackendUnavailable
                        )  # worth trying again, or a setup to change
                        raise failed(await self._http_error(client, response))
                    async for line in response.aiter_lines():
                        if stream.feed(line):
                            break  # closing fence or [DONE]: leaving the block closes the stream
        except httpx.ConnectError as exc:
            url, self.base_url = self.base_url, ("" if self.auto else self.base_url)  # auto: look again
            raise BackendUnavailable(
                f"Cannot reach the model server at {url} ({_reason(exc)}). Is it running? "
                + (
                    "It was found through the Jupyter runtime dir; it may have just exited: the next try "
                    "starts a new one."
                    if self.auto
                    else _SETUP_HINT
                )
            ) from None
        except httpx.TimeoutException as exc:
            what = "to accept the connection" if isinstance(exc, httpx.ConnectTimeout) else "for the reply"
            raise BackendFailed(
                f"The model server at {self.base_url} did not answer within "
                f"{connect if isinstance(exc, httpx.ConnectTimeout) else read:g} s (waiting {what}); "
                "it may be overloaded."
            ) from None
        except httpx.HTTPError as exc:  # RemoteProtocolError, ReadError: the connection broke
            if not stream.finished:
                raise BackendFailed(self._cut_message(stream, _reason(exc))) from None
        if not stream.finished:
            raise BackendFailed(self._cut_message(stream, "the stream ended without [DONE]"))
        self.last_stop_reason = stream.finish_reason
        return Reply(text=stream.text, prompt_tokens=stream.prompt_tokens, completion_tokens=stream.completion_tokens)

    def _cut_message(self, stream: _Stream, reason: str) -> str:
        return (
            f"The model server at {self.base_url} stopped in the middle of the reply "
            f"({reason}; {len(stream.text)} characters received). It may have crashed or been "
            "restarted."
        )

    async def _http_error(self, client, response) -> str:
        status = response.status_code
        detail = _error_detail(await response.aread())
        where = f"The model server at {self.base_url}"
        if status in (401, 403):
            return (
                f"{where} refused the request (HTTP {status}: {detail}): the API key is missing or "
                "wrong. Set `%config VisCoder.api_key` or VISCODER_API_KEY to the server's token."
            )
        if status == 404:
            served = await _served_models(client, self.base_url, response.request.headers)
            return f"{where} answered HTTP 404 for model {self.model!r} ({detail}). " + (
                f"It serves: {', '.join(served)}; set `%config VisCoder.model` to one of them."
                if served
                else "Check that the URL ends with /v1 and names an OpenAI-compatible server, and the model name."
            )
        if status == 429:
            return f"{where} is busy (HTTP 429: {detail}); wait a moment."
        if status < 500:
            return f"{where} rejected the request (HTTP {status}: {detail})."
        return f"{where} failed (HTTP {status}: {detail}); if it persists, see the server's log."


class _Stream:
    """Server-sent events of a chat-completions stream, line by line, into text."""

    def __init__(self, on_text: OnText | None, where: str):
        self.on_text, self.where = on_text, where
        self.fence = FenceWatcher()
        self.parts: list[str] = []
        self.data: list[str] = []
        self.finished = False
        self.finish_reason: str | None = None
        self.prompt_tokens = self.completion_tokens = 0

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def feed(self, line: str) -> bool:
        """One line of the stream; True once the reply is complete."""
        if line.startswith(":"):  # a comment: keep-alive
            return False
        if line.startswith("data:"):
            self.data.append(line[5:].lstrip(" "))
            return False
        if line.strip() or not self.data:  # other fields (event:, id:) or a stray blank line
            return False
        payload, self.data = "\n".join(self.data), []
        return self.event(payload)

    def event(self, payload: str) -> bool:
        if payload.strip() == "[DONE]":
            self.finished = True
            return True
        try:
            chunk = json.loads(payload)
        except ValueError:
            raise BackendUnavailable(f"{self.where} sent something that is not JSON: {payload[:200]!r}") from None
        if chunk.get("error"):
            raise BackendFailed(f"{self.where} reported an error mid-reply: {_error_detail(chunk)}.")
        usage = chunk.get("usage") or {}
        self.prompt_tokens = usage.get("prompt_tokens", self.prompt_tokens) or self.prompt_tokens
        self.completion_tokens = usage.get("completion_tokens", self.completion_tokens) or self.completion_tokens
        for choice in chunk.get("choices") or []:
            content = (choice.get("delta") or {}).get("content") or ""
            if content:
                self.parts.append(content)
                self.completion_tokens = max(self.completion_tokens, len(self.parts))
                if self.on_text is not None:
                    self.on_text(content)
                if self.fence.feed(content):
                    self.finished, self.finish_reason = True, "fence"
                    return True
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
                # The reply is complete; a usage chunk and [DONE] may follow, but need not.
                self.finished = True
        return False


# --------------------------------------------------------------------------- helpers


def _httpx():
    try:
        import httpx
    except ImportError:
        raise BackendUnavailable("The 'openai' backend needs httpx: pip install httpx") from None
    return httpx


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _error_detail(raw: bytes | dict) -> str:
    """The message of an OpenAI-style error body, else the body's start."""
    try:
        body = raw if isinstance(raw, dict) else json.loads(raw)
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)[:300]
    except (ValueError, AttributeError):
        pass
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return text.strip()[:300] or "no details"


async def _served_models(client, base_url: str, headers) -> list[str]:
    try:
        response = await client.get(
            f"{base_url}/models", headers={k: v for k, v in headers.items() if k.lower() == "authorization"}
        )
        return [m["id"] for m in response.json().get("data", [])][:10]
    except Exception:  # noqa: BLE001 - only a hint for the error message
        return []
