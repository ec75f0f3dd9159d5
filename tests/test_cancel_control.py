"""The sidebar's Cancel while the user's cell runs (issue 25, item 3), through a real kernel.

A comm message waits behind the running cell (the shell channel is read on the kernel's main
thread); the sidebar's Cancel also goes on the control channel (frontends/cancel_control.py),
which has its own thread. The fix stops while the cell runs on, and the cell is not interrupted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import GOOD_BAR, write_replies
from jupyter_client.manager import start_new_kernel
from test_comm import SLEEPS, CommClient

from viscoder_jupyter.frontends.cancel_control import CANCEL_REPLY, CANCEL_REQUEST

LONG_CELL = "import time\ntime.sleep(20)\nprint('the long cell finished')"


@pytest.fixture
def kernel(tmp_path):
    km, kc = start_new_kernel(kernel_name="python3")
    replay = write_replies(tmp_path / "replies.jsonl", SLEEPS, GOOD_BAR)
    code = (
        f"%load_ext viscoder_jupyter\n%config VisCoder.backend = 'replay'\n%config VisCoder.replay = {replay!r}\n"
        "import pandas as pd\nsales = pd.DataFrame({'region': ['N', 'S', 'W'], 'revenue': [1.0, 2.0, 3.0]})\n"
    )
    reply = kc.execute_interactive(code, timeout=120, output_hook=lambda msg: None)
    assert reply["content"]["status"] == "ok", reply["content"]
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def cancel_on_control(kc, comm_id: str, run_id: str) -> dict:
    kc.control_channel.send(kc.session.msg(CANCEL_REQUEST, {"comm_id": comm_id, "id": run_id}))
    reply = kc.control_channel.get_msg(timeout=30)  # no handler: no reply, and this raises Empty
    assert reply["msg_type"] == CANCEL_REPLY
    return reply["content"]


def test_cancel_on_the_control_channel_stops_the_fix_while_a_cell_runs(kernel):
    kc = kernel
    client = CommClient(kc)
    assert client.open()["type"] == "ready"
    client.fix("slow", settings={"retries": 0, "timeout": 900})
    seen = []
    while not any("running the code" in e.get("message", "") for e in seen):  # the child sleeps 600 s now
        seen.append(client.next())

    cell = kc.execute(LONG_CELL)
    while True:  # the cell has started: the kernel's main thread is in time.sleep
        msg = kc.get_iopub_msg(timeout=60)
        if msg["msg_type"] == "execute_input" and msg["parent_header"].get("msg_id") == cell:
            break
    # The comm's own cancel waits behind the cell; the control channel's does not.
    client.send({"type": "cancel", "id": "slow"})
    assert cancel_on_control(kc, client.comm_id, "slow") == {"status": "ok", "cancelling": True}

    # In the order the frontend sees them: the fix is cancelled before the cell prints its line.
    order = []
    while "cell" not in order:
        msg = kc.get_iopub_msg(timeout=120)
        if msg["msg_type"] == "comm_msg" and msg["content"]["comm_id"] == client.comm_id:
            order.append(msg["content"]["data"]["type"])
        elif msg["msg_type"] == "stream" and "the long cell finished" in msg["content"]["text"]:
            order.append("cell")
    assert order == ["cancelled", "cell"]

    # The user's cell ran to its end: not interrupted.
    reply = kc.get_shell_msg(timeout=60)
    while reply["parent_header"].get("msg_id") != cell:
        reply = kc.get_shell_msg(timeout=60)
    assert reply["content"]["status"] == "ok"

    # A cancel for a run that is over, or of an unknown comm, stops nothing and says so.
    assert cancel_on_control(kc, client.comm_id, "slow") == {"status": "ok", "cancelling": False}
    assert cancel_on_control(kc, "no-such-comm", "slow") == {"status": "ok", "cancelling": False}

    # The cancelled attempt no longer holds the child kernel: the next fix works.
    client.fix("next", settings={"retries": 0})
    done = client.until_final()[-1]
    assert done["type"] == "done" and done["ok"] and done["id"] == "next"


def test_the_sidebar_sends_the_cancel_this_kernel_handles():
    bridge = (Path(__file__).parents[1] / "labextension" / "src" / "bridge" / "bridge.ts").read_text(encoding="utf-8")
    assert f"CANCEL_REQUEST = '{CANCEL_REQUEST}'" in bridge
