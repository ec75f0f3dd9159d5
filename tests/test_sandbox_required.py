"""`sandbox = 'required'` and VISCODER_REQUIRE_SANDBOX=1 hold at run time on every front end: the
magic, the sidebar's comm and generate_plot refuse to run generated code without the sandbox,
whatever setting, flag or sidebar choice asks for less. bwrap fails as Docker's defaults make it
fail (conftest's broken_bwrap, and the same in the sidebar's kernel: a fake, the real failure needs
a machine without user namespaces)."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import GOOD_BAR, sales_frame, write_replies
from IPython.core.error import UsageError
from jupyter_client.manager import start_new_kernel
from test_comm import CommClient

from viscoder_jupyter import generate_plot, runtime
from viscoder_jupyter.child.sandbox import SandboxUnavailable

REFUSED = "The sandbox is required"
BROKEN = (
    "import viscoder_jupyter.child.sandbox as sb\n"
    "sb._probe = lambda: 'bwrap refused to run here (bwrap: Creating new namespace failed: Operation not permitted)'\n"
)


@pytest.fixture
def fresh_kernel(monkeypatch):
    """The front ends' shared child kernel, made afresh for the test and shut down after it."""
    monkeypatch.setattr(runtime, "_kernel", None)
    yield
    if runtime._kernel is not None:
        runtime.submit(runtime._kernel.async_shutdown()).result(90)


@pytest.fixture(params=["setting", "environment"])
def required(request, monkeypatch, broken_bwrap, fresh_kernel):
    """(the settings of the run, what the refusal names): the setting 'required', or
    VISCODER_REQUIRE_SANDBOX=1 with a setting that asks for no sandbox at all."""
    if request.param == "environment":
        monkeypatch.setenv("VISCODER_REQUIRE_SANDBOX", "1")
        return {"sandbox": "off"}, "VISCODER_REQUIRE_SANDBOX=1"
    monkeypatch.delenv("VISCODER_REQUIRE_SANDBOX", raising=False)
    return {"sandbox": "required"}, "VisCoder.sandbox = 'required'"


def test_the_magic_refuses_to_run_without_the_sandbox(required, shell):
    settings, named = required
    ip = shell(GOOD_BAR, **settings)
    with pytest.raises(UsageError, match=REFUSED) as refused:
        ip.run_cell_magic("viscoder", "sales", "bar chart of revenue by region")
    assert named in str(refused.value) and "seccomp=unconfined" in str(refused.value)
    assert not getattr(ip, "rl_next_input", None)  # nothing inserted


def test_generate_plot_refuses_to_run_without_the_sandbox(required, tmp_path):
    settings, named = required
    replay = write_replies(tmp_path / "r.jsonl", GOOD_BAR)
    with pytest.raises(SandboxUnavailable, match=REFUSED) as refused:
        generate_plot(sales_frame(), "bar chart of revenue by region", backend="replay", replay=replay, **settings)
    assert named in str(refused.value)


@pytest.mark.parametrize("how", ["setting", "environment"])
def test_the_sidebar_refuses_to_run_without_the_sandbox_whatever_it_sends(how, tmp_path):
    """A real kernel with the extension, its bwrap broken, its sandbox required by its own
    configuration or its environment; the sidebar asks for no sandbox."""
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        replay = write_replies(tmp_path / "replies.jsonl", GOOD_BAR)
        requirement = (
            "import os\nos.environ['VISCODER_REQUIRE_SANDBOX'] = '1'\n"
            if how == "environment"
            else "import os\nos.environ.pop('VISCODER_REQUIRE_SANDBOX', None)\n%config VisCoder.sandbox = 'required'\n"
        )
        code = (
            BROKEN
            + f"%load_ext viscoder_jupyter\n%config VisCoder.backend = 'replay'\n%config VisCoder.replay = {replay!r}\n"
            + requirement
            + "import pandas as pd\nsales = pd.DataFrame({'region': ['N', 'S'], 'revenue': [1.0, 2.0]})\n"
        )
        assert kc.execute_interactive(code, timeout=120, output_hook=lambda m: None)["content"]["status"] == "ok"
        client = CommClient(kc)
        assert client.open()["type"] == "ready"
        client.fix("run-1", settings={"sandbox": "off"})
        events = client.until_final()
        error = events[-1]
        assert error["type"] == "error" and REFUSED in error["message"], events
        (notice,) = [e["message"] for e in events if e["type"] == "notice"]
        assert "sandbox 'off' was not used" in notice and "'required'" in notice
        assert "attempt" not in [e["type"] for e in events]  # no code ran
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_without_a_requirement_auto_still_falls_back(broken_bwrap, fresh_kernel, tmp_path):
    """The floor is the environment's or the setting's, not a new default: 'auto' still runs (and says so)."""
    replay = write_replies(tmp_path / "r.jsonl", GOOD_BAR)
    with pytest.warns(UserWarning, match="without the sandbox"):
        result = generate_plot(
            pd.DataFrame({"region": ["N"], "revenue": [1.0]}), "bars", backend="replay", replay=replay
        )
    assert result.ok and result.sandboxed is False
