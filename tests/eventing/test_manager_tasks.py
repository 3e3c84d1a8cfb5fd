"""The manager's background tasks: the periodic re-sync outlives a crashed pass, stop() ends them.

No network here: these tests drive only the task bookkeeping, with stand-ins for the NATS
connection and the dispatcher, which the loops under test never reach.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from pyjetstream.eventing.config import EventingConfig
from pyjetstream.eventing.delivery_status import DeliveryStatusBook
from pyjetstream.eventing.manager import EventingManager


def make_manager() -> EventingManager:
    nc = SimpleNamespace(jetstream=lambda timeout: SimpleNamespace())
    dispatcher: Any = SimpleNamespace(metrics=None, delivery_status=DeliveryStatusBook())
    return EventingManager(nc, EventingConfig(), dispatcher, store=None, resync_interval=0)  # type: ignore[arg-type]


async def test_resync_loop_survives_a_crashing_pass() -> None:
    mgr = make_manager()
    calls = 0
    second = asyncio.Event()

    async def resync() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KeyError("a bug in one pass")
        second.set()

    mgr.resync = resync  # type: ignore[method-assign]
    mgr._tasks.append(asyncio.create_task(mgr._resync_loop()))
    await asyncio.wait_for(second.wait(), 5)
    assert calls >= 2
    await mgr.stop()
    assert mgr._tasks == []


async def test_stop_awaits_every_task_even_after_a_failed_one() -> None:
    mgr = make_manager()

    async def fails() -> None:
        raise RuntimeError("reconnect work that failed earlier")

    async def runs() -> None:
        await asyncio.Event().wait()

    failed = asyncio.create_task(fails())
    running = asyncio.create_task(runs())
    mgr._tasks += [failed, running]
    await asyncio.sleep(0)  # let `fails` finish before stop() is called
    assert failed.done()
    await mgr.stop()
    assert running.cancelled()
    assert mgr._tasks == []


async def test_reconnect_tasks_do_not_accumulate() -> None:
    mgr = make_manager()
    done = asyncio.Event()

    async def after_reconnect() -> None:
        done.set()

    mgr._after_reconnect = after_reconnect  # type: ignore[method-assign]
    for _ in range(5):
        done.clear()
        mgr.on_reconnect()
        await asyncio.wait_for(done.wait(), 5)
        await asyncio.sleep(0)  # the task completes once its coroutine has returned
    assert len(mgr._tasks) <= 1
    await mgr.stop()
