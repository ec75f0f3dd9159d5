"""The user presses Interrupt while %%viscoder runs: everything stops, nothing is inserted."""

import time

import pytest
from helpers import GOOD_BAR, write_replies
from jupyter_client.manager import start_new_kernel

ENDLESS = "```python\nimport matplotlib.pyplot as plt\nwhile True:\n    pass\n```"


@pytest.mark.timeout(120)
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

        outputs = []
        msg_id = kc.execute("%%viscoder sales --timeout 60\nbar chart of revenue")
        time.sleep(4)  # the endless attempt is now running in the child kernel
        interrupted_at = time.monotonic()
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=30)
        stopped_after = time.monotonic() - interrupted_at
        assert reply["parent_header"]["msg_id"] == msg_id
        while True:
            msg = kc.get_iopub_msg(timeout=5)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            content = msg["content"]
            outputs.append(content.get("text", "") + str(content.get("data", {}).get("text/plain", "")))
        assert stopped_after < 10, f"took {stopped_after:.1f} s to stop (the attempt's timeout is 60 s)"
        assert any("interrupted" in text for text in outputs), outputs
        assert not reply["content"].get("payload"), "nothing may be inserted"

        # The child kernel is free again: the next request runs at once and works.
        again = kc.execute_interactive("%%viscoder sales\nbar chart", timeout=60)
        assert again["content"]["status"] == "ok"
        assert [p["source"] for p in again["content"]["payload"]] == ["set_next_input"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
