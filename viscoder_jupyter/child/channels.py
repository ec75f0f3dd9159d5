"""The parent's sockets to the child kernel, bounded before any message is decoded.

The child runs hostile code that holds the kernel's session key: it can send any message,
of any size, on any channel. jupyter_client would receive and JSON-decode it whole. Here:
- zmq drops a frame bigger than MESSAGE_CAP (ZMQ_MAXMSGSIZE) and the connection with it, for
  good; a socket monitor tells us, so the attempt ends with an error and the kernel is replaced;
- iopub and shell count the bytes of every message before decoding it; past the
  attempt's budget (iopub) or a reply's cap (shell) only the small header frames are read,
  and the message becomes a stub that says it was dropped.
Limit: libzmq hands over a multipart message only whole, so many frames each under the cap
still pile up in this process before we see them; the child's oom_score_adj of 1000 makes
it the process the kernel's OOM killer takes, and its death drops the half-received message.

Imported only when a kernel starts (jupyter_client and zmq cost time at `%load_ext`).
"""

from __future__ import annotations

import json
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from traitlets import Type

from . import outputs

DROPPED = "viscoder_dropped"  # msg_type of a stub standing in for a message not decoded
_HEADER_CAP = 64 * 2**10  # a real header is well under 1 KB
_STATUS_CAP = 4 * 2**10  # a real status message's content is a few dozen bytes


class _BoundedChannel(AsyncZMQSocketChannel):
    """Counts bytes before decoding; subclasses say what to do past their limit."""

    received = 0  # bytes this attempt
    dropped = 0  # messages read as stubs this attempt
    disconnects = 0  # connections zmq dropped over an oversized frame

    def __init__(self, socket: zmq.asyncio.Socket, session: Any, loop: Any = None) -> None:
        super().__init__(socket, session, loop)
        self._monitor = socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)

    def reset(self) -> None:
        self.received = self.dropped = 0
        self.disconnects = 0

    async def count_disconnects(self) -> int:
        """Disconnections since the last reset (only an oversized frame causes one mid-attempt)."""
        while await self._monitor.poll(0):
            await self._monitor.recv_multipart()
            self.disconnects += 1
        return self.disconnects

    def close(self) -> None:
        try:
            self.socket.disable_monitor()
        except zmq.ZMQError:
            pass
        self._monitor.close(linger=0)
        super().close()

    async def _recv(self, **kwargs: Any) -> dict[str, Any]:
        raw = await self.socket.recv_multipart(**kwargs)
        size = sum(len(frame) for frame in raw)
        self.received += size
        try:
            _, frames = self.session.feed_identities(raw)
        except ValueError:
            frames = []
        if len(frames) < 5 or len(frames[1]) + len(frames[2]) > _HEADER_CAP:
            self.dropped += 1
            return _stub({}, {})  # not a message from a kernel: nobody waits for it
        if self._keep(frames, size):
            return self.session.deserialize(frames)
        self.dropped += 1
        return self._stand_in(json.loads(frames[1]), json.loads(frames[2]))

    def _keep(self, frames: list[bytes], size: int) -> bool:
        raise NotImplementedError

    def _stand_in(self, header: dict, parent: dict) -> dict[str, Any]:
        return _stub(header, parent)


class IOPubChannel(_BoundedChannel):
    """Outputs: every message counts against the attempt's budget; past it only the kernel's
    status (small, and nbclient needs its `idle`) is decoded."""

    def _keep(self, frames: list[bytes], size: int) -> bool:
        if self.received <= outputs.ATTEMPT_BYTES_CAP:
            return True
        return len(frames[4]) <= _STATUS_CAP and json.loads(frames[1]).get("msg_type") == "status"


class ShellChannel(_BoundedChannel):
    """Replies: one bigger than REPLY_CAP (a traceback of megabytes) becomes an error reply."""

    def _keep(self, frames: list[bytes], size: int) -> bool:
        return size <= outputs.REPLY_CAP

    def _stand_in(self, header: dict, parent: dict) -> dict[str, Any]:
        msg = _stub(header, parent)
        msg["msg_type"] = msg["header"]["msg_type"] = "execute_reply"
        msg["content"] = {"status": "error", "ename": outputs.TOO_BIG_ENAME, "evalue": "", "traceback": []}
        return msg


def _stub(header: dict, parent: dict) -> dict[str, Any]:
    header = {"msg_id": str(header.get("msg_id", "")), "msg_type": DROPPED}
    parent = {"msg_id": str(parent.get("msg_id", ""))} if isinstance(parent, dict) else {}
    return {
        "header": header,
        "parent_header": parent,
        "msg_id": header["msg_id"],
        "msg_type": DROPPED,
        "metadata": {},
        "content": {},
        "buffers": [],
    }


class BoundedKernelClient(AsyncKernelClient):
    """A kernel client whose sockets refuse oversized frames and whose channels count bytes."""

    iopub_channel_class = Type(IOPubChannel)  # type: ignore[assignment]
    shell_channel_class = Type(ShellChannel)  # type: ignore[assignment]

    def _context_default(self) -> zmq.asyncio.Context:
        self._created_context = True
        context = zmq.asyncio.Context()
        context.setsockopt(zmq.MAXMSGSIZE, outputs.MESSAGE_CAP)  # a default for every socket made from it
        return context

    def start_channels(self, *args: Any, **kwargs: Any) -> None:
        # No stdin (allow_stdin is off): nobody would read it, and what the child sent there would pile up.
        kwargs["stdin"] = False
        super().start_channels(*args, **kwargs)

    def bounded_channels(self) -> list[_BoundedChannel]:
        return [self.iopub_channel, self.shell_channel]


async def too_big(nb: Any) -> tuple[Any, bool]:
    """The attempt's output went past what the parent takes: an error that says so (else None),
    and whether a connection was lost with it (zmq does not reconnect after an oversized frame,
    so the kernel must be replaced)."""
    from ..core.errors import CodeRaised

    bounded = nb.kc.bounded_channels() if nb.kc is not None else []
    if not bounded:
        return None, False
    iopub, shell = bounded
    mb = 2**20
    lost = bool(sum([await c.count_disconnects() for c in bounded]))
    if lost:
        what = f"a message over {outputs.MESSAGE_CAP // mb} MB"
    elif iopub.received > outputs.ATTEMPT_BYTES_CAP:
        what = f"{iopub.received // mb} MB of output, over the {outputs.ATTEMPT_BYTES_CAP // mb} MB an attempt may send"
    elif shell.dropped:
        what = f"a reply over {outputs.REPLY_CAP // mb} MB (an exception message that large)"
    else:
        return None, False
    error = CodeRaised(
        outputs.TOO_BIG_ENAME,
        f"The code sent {what}; it was dropped. Show the figure once, and don't print or display "
        "data in bulk, in a loop or as one huge object.",
        "",
    )
    return error, lost
