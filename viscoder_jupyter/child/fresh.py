"""A fresh child kernel for every request: one that no attempt has run in, so hooks, patched
libraries and modules an attempt left behind cannot reach the next request (whose frames may be
another user's data). Detecting such changes from inside the child cannot work against code
that can patch the detector; a new process can. The spare boots in the background after the
request's first attempt, while the model writes, and is swapped in whole when the next
request's frames arrive; the used kernel is shut down in the background.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


class FreshKernels:
    """Mixed into ChildKernel: the spare and the swap."""

    fresh_per_request: bool
    _spare: Any
    _spare_boot: asyncio.Task | None
    _retiring: set[asyncio.Task]

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
    )

    def _start_spare(self) -> None:
        """Boot the next request's kernel now, while the model writes (after the attempt: not
        during it). The spare is a ChildKernel of its own; its process is swapped in whole."""
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

    async def _fresh_for_request(self) -> None:
        """Before a request's frames: a kernel an attempt ran in is replaced by the spare (or,
        without a ready one, restarted), and the old one shut down in the background."""
        if not (self.fresh_per_request and self._used and self._nb is not None):
            return
        spare, boot_task = self._spare, self._spare_boot
        self._spare = self._spare_boot = None
        settings = (self.sandbox, self.memory_limit_mb, self.cpu_time_limit_s)
        ready = False
        if spare is not None and (spare.sandbox, spare.memory_limit_mb, spare.cpu_time_limit_s) == settings:
            try:
                await boot_task
                ready = spare.is_alive
            except Exception:  # noqa: BLE001 - a failed spare: restart as before
                log.info("the spare child kernel did not start; restarting instead", exc_info=True)
        if not ready:
            if spare is not None:
                self._retire(spare, boot_task)
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
