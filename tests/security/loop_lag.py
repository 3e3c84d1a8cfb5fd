"""Watching the event loop from inside the server's process, for the fairness tests: the
longest pass of the loop, and the time the garbage collector held the process.

CPU time of the loop's thread, not wall time: on a loaded machine (CI runs two test workers on
two cores) the operating system may take the core away from the loop for a while, which is
not a request holding the loop; work done on the loop is CPU time of this thread.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any


class GcClock:
    """Total time the garbage collector has held the process (both threads wait for it);
    register it in gc.callbacks."""

    def __init__(self) -> None:
        self.total = 0.0
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._t0


GC = GcClock()


class LoopLag:
    """The longest pass of the event loop while it runs (1 ms sleeps), in CPU time of the
    loop's own thread; with `count_gc` False, less the time the garbage collector (GC, when
    registered) held the process during that pass."""

    def __init__(self, count_gc: bool = False) -> None:
        self.worst = 0.0
        self._count_gc = count_gc
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            t, g = time.thread_time(), GC.total
            await asyncio.sleep(0.001)
            held = time.thread_time() - t
            self.worst = max(self.worst, held if self._count_gc else held - (GC.total - g))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
