"""A fresh child kernel for every attempt: one that no earlier attempt has run in, so hooks,
patched libraries, options (`pd.set_option`, `mpl.rcParams`) and modules an attempt left behind
can reach neither the next attempt of the request (what is verified would then depend on a failed
attempt, and not reproduce in the user's kernel) nor the next request (whose frames may be
another user's data). Detecting such changes from inside the child cannot work against code
that can patch the detector; a new process can.

The spare boots in the background right after an attempt has run, while the model writes the
next one. When the loop says another attempt follows (`next_attempt`), the request's frames are
loaded into the spare too, still in the background; the attempt then runs in it, swapped in
whole, and the used kernel is shut down in the background. A new request takes a spare that
holds no frames (one holding the last request's is dropped): its frames arrive then.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from .folders import FRAMES

log = logging.getLogger(__name__)


class FreshKernels:
    """Mixed into ChildKernel: the spare and the swap."""

    fresh_per_request: bool
    fresh_per_attempt: bool
    _spare: Any
    _spare_boot: asyncio.Task | None
    _retiring: set[asyncio.Task]
    _fresh_pending: bool
    _holds_frames: bool

    _PROCESS = (
        "_km",
        "_nb",
        "_folders",
        "_log_file",
        "_vitals",
        "sandboxed",
        "sandbox_notice",
        "_used",
        "_cancelled",
        "_cgroup",
        "_frame_prints",
    )

    def _start_spare(self) -> None:
        """Boot the next kernel now, while the model writes (after the attempt: not during it).
        The spare is a ChildKernel of its own; its process is swapped in whole."""
        if not self.fresh_per_request or self._spare is not None or self._closed:
            return
        spare = type(self)(
            self.kernel_name,
            self.startup_timeout,
            sandbox=self.sandbox,
            memory_limit_mb=self.memory_limit_mb,
            cpu_time_limit_s=self.cpu_time_limit_s,
            fresh_per_request=False,
        )
        self._spare, self._spare_boot = spare, asyncio.create_task(spare.async_start())

    def next_attempt(self) -> None:
        """Another attempt of this request follows (the loop says so before the model writes it):
        it runs in a fresh kernel, into which this request's frames are loaded meanwhile.
        Call on the kernel's event loop."""
        if not (self.fresh_per_request and self.fresh_per_attempt and self._used) or self._closed:
            return
        self._fresh_pending = True
        spare = self._spare
        if spare is not None and not spare._holds_frames:
            spare._holds_frames = True
            self._spare_boot = asyncio.create_task(self._hand_frames(spare, self._spare_boot))

    async def _hand_frames(self, spare: Any, boot_task: asyncio.Task | None) -> None:
        """Once the spare is up: this request's frames, from our master copy, loaded into it."""
        if boot_task is not None:
            await boot_task
        master = os.path.join(self._folders.private or "", FRAMES)
        if not self._folders.has_frames:
            return
        data = await asyncio.to_thread(_read, master)
        if not spare._folders.save_frames(data):
            raise OSError("the spare kernel's folder refused the frames")
        async with spare._run_lock:
            await spare._load_frames()

    async def _fresh_for_attempt(self) -> None:
        """Before an attempt that follows another in this kernel: the spare (frames loaded)
        swapped in, or, without a ready one, a restart (which loads the frames)."""
        self._fresh_pending = False
        spare, task = self._take_spare()
        if spare is not None and not spare._holds_frames:  # `next_attempt` came too late for the background
            spare._holds_frames = True
            task = asyncio.ensure_future(self._hand_frames(spare, task))
        await self._swap_or_restart(spare, task)

    async def _fresh_for_request(self) -> None:
        """Before a request's frames: a kernel an attempt ran in is replaced by the spare (or,
        without a ready one, restarted), and the old one shut down in the background."""
        self._fresh_pending = False
        if self._spare is not None and self._spare._holds_frames:  # the last request's frames: not for this one
            self._retire(*self._take_spare())
        if not (self.fresh_per_request and self._used and self._nb is not None):
            return
        await self._swap_or_restart(*self._take_spare())

    def _take_spare(self) -> tuple[Any, asyncio.Task | None]:
        spare, task = self._spare, self._spare_boot
        self._spare = self._spare_boot = None
        return spare, task

    async def _swap_or_restart(self, spare: Any, task: asyncio.Task | None) -> None:
        settings = (self.sandbox, self.memory_limit_mb, self.cpu_time_limit_s)
        ready = False
        try:
            if spare is not None and (spare.sandbox, spare.memory_limit_mb, spare.cpu_time_limit_s) == settings:
                try:
                    await task
                    ready = spare.is_alive
                except Exception:  # noqa: BLE001 - a failed spare: restart as before
                    log.info("the spare child kernel did not start; restarting instead", exc_info=True)
        finally:
            if not ready and spare is not None:  # cancelled meanwhile too: never left running
                self._retire(spare, task)
        if not ready:
            await self._restart()
            return
        for name in self._PROCESS:
            mine, theirs = getattr(self, name), getattr(spare, name)
            setattr(self, name, theirs)
            setattr(spare, name, mine)
        self._stale = False
        self._retire(spare)  # now holding the used kernel

    def _retire(self, old: Any, boot_task: asyncio.Task | None = None) -> None:
        async def retire() -> None:
            if boot_task is not None:
                await asyncio.gather(boot_task, return_exceptions=True)
            await old.async_shutdown()

        task = asyncio.create_task(retire())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _retiring_done(self) -> None:
        """Wait until the kernels being retired are shut down."""
        await asyncio.gather(*self._retiring, return_exceptions=True)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
