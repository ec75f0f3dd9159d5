"""Keep JupyterLab's kernel status honest while a `%%viscoder` run blocks its cell.

JupyterLab (4.4 and later) gives each comm target a kernel subshell: the first time a comm
of a target opens on a kernel, it sends a `create_subshell_request` on the control channel.
In a fresh kernel that first comm is the run's live view (its first ipywidget), so the
request arrives while the cell runs. ipykernel answers it at once on its control thread,
between a busy and an idle status whose parent is that request, and JupyterLab takes that
idle for the kernel's own: it ignores statuses only for the parent types in the page
config's `untracked_message_types` (kernel_info_request, debug_request...), a jupyter_server
list that has no subshell requests. The status bar then read Idle for the rest of the run,
and the sidebar's "the kernel is busy" guard let a fix through that waited for the cell.

So while a run holds the main shell, subshell requests wait until the main shell is free:
their idle then comes after the cell's own. Until then the frontend's comm messages go to
the main shell, as they did before subshells. Nothing else on the control channel is
touched by the run itself, though ipykernel handles control messages one at a time, so one
that arrives behind a held request (a restart's shutdown_request) waits with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

# The control requests JupyterLab sends on its own when comms open and close.
HELD_REQUESTS = ("create_subshell_request", "delete_subshell_request")
_POLL_SECONDS = 0.02


@contextlib.contextmanager
def subshell_requests_wait(shell: Any) -> Iterator[None]:
    """While this block runs (in a cell), subshell requests wait until the cell has ended.

    A no-op outside a kernel and with a kernel that has no subshells (ipykernel < 7).
    """
    kernel = getattr(shell, "kernel", None)
    handlers = getattr(kernel, "control_handlers", None)
    main_shell = getattr(kernel, "_main_asyncio_lock", None)  # held while the main shell runs a request
    if not isinstance(handlers, dict) or not isinstance(main_shell, asyncio.Lock):
        yield
        return
    replaced = {}
    for msg_type in HELD_REQUESTS:
        handler = handlers.get(msg_type)
        if handler is not None and not getattr(handler, "waits_for_main_shell", False):
            replaced[msg_type] = handler
            handlers[msg_type] = _after_main_shell(handler, main_shell)
    try:
        yield
    finally:
        for msg_type, handler in replaced.items():
            handlers[msg_type] = handler


def _after_main_shell(handler, main_shell: asyncio.Lock):
    """`handler`, once the main shell is free (it runs on the control thread's loop)."""

    async def handle_when_free(*args, **kwargs):
        # The main shell publishes its idle before it lets the lock go: ours follows it.
        while main_shell.locked():
            await asyncio.sleep(_POLL_SECONDS)
        result = handler(*args, **kwargs)
        if inspect.isawaitable(result):
            await result

    handle_when_free.waits_for_main_shell = True
    return handle_when_free
