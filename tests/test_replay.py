import asyncio
import json

import pytest

from viscoder_jupyter.backends import backend_names, get_backend
from viscoder_jupyter.backends.replay import ReplayBackend
from viscoder_jupyter.core.errors import BackendUnavailable, ReplayExhausted, RequestError
from viscoder_jupyter.core.settings import VisCoder


def write_replies(path, *replies):
    path.write_text("".join(json.dumps({"reply": r}) + "\n" for r in replies))
    return str(path)


def test_replies_are_served_in_order_and_streamed(tmp_path):
    backend = ReplayBackend(write_replies(tmp_path / "r.jsonl", "one\ntwo", "three"))
    pieces = []
    first = asyncio.run(backend.async_generate([], pieces.append))
    assert first.text == "one\ntwo" and "".join(pieces) == "one\ntwo"
    assert asyncio.run(backend.async_generate([])).text == "three"
    with pytest.raises(ReplayExhausted, match="All 2 recorded replies"):
        asyncio.run(backend.async_generate([]))


def test_a_missing_or_malformed_file_is_a_clear_error(tmp_path):
    with pytest.raises(BackendUnavailable, match="not found"):
        ReplayBackend(str(tmp_path / "nope.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x"}\n')
    with pytest.raises(BackendUnavailable, match="line 1"):
        ReplayBackend(str(bad))


def test_backends_are_found_by_name_and_shared_per_file(tmp_path):
    assert {"replay", "transformers"} <= set(backend_names())
    settings = VisCoder(backend="replay", replay=write_replies(tmp_path / "r.jsonl", "x"))
    assert get_backend(settings) is get_backend(VisCoder(backend="replay", replay=settings.replay))
    with pytest.raises(RequestError, match="Unknown backend 'nope'"):
        get_backend(VisCoder(backend="nope"))
