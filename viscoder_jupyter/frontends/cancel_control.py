"""The sidebar's Cancel on the kernel's control channel, so that it works while a cell runs.

The sidebar's messages travel on the comm, that is on the shell channel, which the kernel
reads on its main thread: while the user's cell runs, a Cancel there waits behind it (issue 25).
JupyterLab sends comm messages over a subshell when the kernel has them (ipykernel 7), but that
does not save a Cancel either: ipykernel 7.4 routes a comm message back to the thread the comm
last sent from, and a fix's events go out as if from the main shell.

The control channel has its own thread in ipykernel 6 and 7, whatever the frontend's settings,
which is why an interrupt works while a cell runs. The sidebar sends `viscoder_cancel_request`
there (besides its usual `cancel` on the comm, which covers a kernel without this handler); the
handler only starts the cancellation on a thread of its own and replies at once, so the control
thread never waits on it. The user's cell is not interrupted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

CANCEL_REQUEST = "viscoder_cancel_request"
CANCEL_REPLY = "viscoder_cancel_reply"


def register(kernel: Any, cancel_soon: Callable[[str, str], bool]) -> bool:
    """Handle CANCEL_REQUEST on `kernel`'s control channel; `cancel_soon(comm_id, run_id)` starts
    the cancellation without waiting and says whether that run was running. False when the kernel
    has no control handlers to extend (not an ipykernel): the comm's cancel is all there is then."""
    handlers = getattr(kernel, "control_handlers", None)
    session = getattr(kernel, "session", None)
    if not isinstance(handlers, dict) or session is None:
        return False

    def handle(stream, ident, parent) -> None:
        content = parent.get("content") or {}
        comm_id, run_id = content.get("comm_id"), content.get("id")
        cancelling = False
        if isinstance(comm_id, str) and isinstance(run_id, str):
            try:
                cancelling = cancel_soon(comm_id, run_id)
            except Exception:  # noqa: BLE001 (a failure here must not take the control thread down)
                log.exception("VisCoder: the cancel on the control channel failed")
        session.send(stream, CANCEL_REPLY, {"status": "ok", "cancelling": cancelling}, parent, ident=ident)

    handlers[CANCEL_REQUEST] = handle
    return True


def unregister(kernel: Any) -> None:
    handlers = getattr(kernel, "control_handlers", None)
    if isinstance(handlers, dict):
        handlers.pop(CANCEL_REQUEST, None)
