"""The user presses Interrupt while %%viscoder runs: everything stops, nothing is inserted."""

import time

import pytest
from helpers import GOOD_BAR, write_replies
from jupyter_client.manager import start_new_kernel

from viscoder_jupyter.child import processes

ENDLESS = "```python\nimport matplotlib.pyplot as plt\nwhile True:\n    pass\n```"


def texts_of(kc, msg_id):
    """The text of each iopub message of one execution (streams, displays and their
    updates), as they come, until the kernel is idle again."""
    while True:
        msg = kc.get_iopub_msg(timeout=60)  # a guard against a hang, not a measure
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return
        content = msg["content"]
        yield content.get("text", "") + str(content.get("data", {}).get("text/plain", ""))


def cpu_by_process(root: int) -> dict[int, float]:
    return {pid: processes.cpu_seconds(pid) or 0.0 for pid in processes.descendants(root)}


def busy_descendant(root: int, cpu_seconds: float = 1.0) -> int:
    """The process under `root` that first spends `cpu_seconds` of CPU from now."""
    start = cpu_by_process(root)
    deadline = time.monotonic() + 120  # a guard against a hang, not a measure
    while time.monotonic() < deadline:
        for pid, used in cpu_by_process(root).items():
            if used >= start.get(pid, 0.0) + cpu_seconds:
                return pid
        time.sleep(0.1)
    raise AssertionError(f"nothing under process {root} ran")


@pytest.mark.timeout(240)
def test_interrupt_stops_the_model_and_the_child_and_inserts_nothing(tmp_path):
    replay = write_replies(tmp_path / "r.jsonl", ENDLESS, GOOD_BAR)
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        setup = (
            "%load_ext viscoder_jupyter\n"
            f"%config VisCoder.backend = 'replay'\n%config VisCoder.replay = {replay!r}\n"
            "import pandas as pd\n"
            "sales = pd.DataFrame({'region': ['N', 'S'], 'revenue': [1.0, 2.0]})"
        )
        assert kc.execute_interactive(setup, timeout=60)["content"]["status"] == "ok"

        # The attempt may run for ten minutes: only the interrupt can end it within the test.
        msg_id = kc.execute("%%viscoder sales --timeout 600\nbar chart of revenue")
        outputs = []
        for text in texts_of(kc, msg_id):
            outputs.append(text)
            if "running the code" in text:
                break
        # The endless loop runs in the child kernel (under the notebook's kernel): the process
        # that spends a second of CPU once the code went to it.
        child = busy_descendant(km.provisioner.pid)
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=120)  # a missed interrupt would run on for 600 s
        assert reply["parent_header"]["msg_id"] == msg_id
        outputs.extend(texts_of(kc, msg_id))
        assert any("interrupted" in text for text in outputs), outputs
        assert not any("did not finish within" in text for text in outputs), outputs  # not its own timeout
        assert not reply["content"].get("payload"), "nothing may be inserted"
        # Interrupted, not killed (the next request then starts in a fresh kernel, issue 14 item 5).
        assert processes.alive(child)

        # The child kernel is free again: the next request runs at once and works.
        again = kc.execute_interactive("%%viscoder sales\nbar chart", timeout=60)
        assert again["content"]["status"] == "ok"
        assert [p["source"] for p in again["content"]["payload"]] == ["set_next_input"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
