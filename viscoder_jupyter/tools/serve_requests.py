"""What `viscoder serve` accepts: the request's Host and type, and a chat-completions body checked
field by field, so that anything malformed is a 400 with a message, never a 500.

Web pages can reach a loopback server (DNS rebinding: a name of theirs that resolves to
127.0.0.1), so only loopback names (and names the user allowed) are served, and only JSON
bodies, which a page cannot send across origins without a preflight this server never grants.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from ..backends.discovery import is_loopback

#: The largest request body read (a prompt of MAX_PROMPT_CHARS, JSON-escaped, fits).
MAX_BODY_BYTES = 2 * 1024 * 1024
#: Characters of all messages together (a first turn is ~2-5k, a few self-debug turns ~20k).
MAX_PROMPT_CHARS = 200_000
#: Requests that may wait while one generates; more get HTTP 429.
MAX_QUEUE = 8

ROLES = ("system", "user", "assistant")


class BadRequest(ValueError):
    """An HTTP error status and the message for the client."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.kind = status, kind


def host_allowed(host: str, allowed: set[str]) -> bool:
    """The Host header names this machine's loopback, or a name the user allowed (--allow-host)."""
    name = host.strip().lower()
    if name.startswith("["):  # [::1]:8000
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    return is_loopback(name) or name.rstrip(".") in allowed


def is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "application/json"


@dataclass
class ChatRequest:
    messages: list[dict[str, str]]
    max_tokens: int | None
    temperature: float
    top_p: float
    seed: int
    stream: bool
    include_usage: bool
    model: str | None


def _reject_constant(name: str):
    raise BadRequest(400, f"{name} is not a JSON number; send a finite number")


def parse_chat(raw: bytes, max_prompt_chars: int = MAX_PROMPT_CHARS) -> ChatRequest:
    """The body of /v1/chat/completions, checked; BadRequest says what is wrong."""
    try:
        body = json.loads(raw or b"{}", parse_constant=_reject_constant)
    except BadRequest:
        raise
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise BadRequest(400, f"The body is not valid JSON ({str(exc)[:120]})") from None
    if not isinstance(body, dict):
        raise BadRequest(400, "The body must be a JSON object")
    messages = _messages(body.get("messages"))
    chars = sum(len(m["content"]) for m in messages)
    if chars > max_prompt_chars:
        raise BadRequest(
            400,
            f"The conversation is {chars:,} characters; this server takes at most {max_prompt_chars:,} "
            "(viscoder serve --max-prompt-chars). Send fewer or smaller frames or messages",
            "context_length_exceeded",
        )
    if _integer(body, "n", 1) != 1:
        raise BadRequest(400, "Only n=1 is supported")
    limit = _integer(body, "max_completion_tokens", None)
    limit = _integer(body, "max_tokens", None) if limit is None else limit
    if limit is not None and limit < 1:
        raise BadRequest(400, "max_tokens must be at least 1")
    temperature = _number(body, "temperature", 0.0, 0.0, 2.0)
    top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
    if top_p == 0:
        raise BadRequest(400, "top_p must be above 0")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise BadRequest(400, "stream_options must be an object")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise BadRequest(400, "model must be a string")
    return ChatRequest(
        messages=messages,
        max_tokens=limit,
        temperature=temperature,
        top_p=top_p,
        seed=_integer(body, "seed", 0),
        stream=_boolean(body, "stream"),
        include_usage=_boolean(options or {}, "include_usage"),
        model=model or None,
    )


def _messages(messages) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise BadRequest(400, "'messages' must be a non-empty list")
    out = []
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):  # content parts: keep the text ones
            texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type", "text") == "text"]
            content = "".join(texts) if all(isinstance(t, str) for t in texts) else None
        if not isinstance(content, str) or m.get("role") not in ROLES:
            raise BadRequest(400, "Each message needs a role (system, user, assistant) and text content")
        out.append({"role": m["role"], "content": content})
    return out


def _integer(body: dict, name: str, default):
    value = body.get(name)
    if value is None:
        return default
    if type(value) is not int:  # not a bool, not 1.5, not "10"
        raise BadRequest(400, f"{name} must be an integer, not {json.dumps(value)[:40]}")
    if abs(value) > 2**63:
        raise BadRequest(400, f"{name} is out of range")
    return value


def _number(body: dict, name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if type(value) not in (int, float) or not math.isfinite(value):
        raise BadRequest(400, f"{name} must be a number, not {json.dumps(value)[:40]}")
    if not low <= value <= high:
        raise BadRequest(400, f"{name} must be between {low:g} and {high:g}")
    return float(value)


def _boolean(body: dict, name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest(400, f"{name} must be true or false")
    return value
