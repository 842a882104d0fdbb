"""Graceful shutdown: draining the Notifier ends every held wait and every later one."""

from __future__ import annotations

import asyncio

from lro_server.core.notify import Notifier

NAME = "operations/6f1c1a52-3d8e-4d8a-9a55-2a4f3f9a2b10"


async def test_drain_wakes_held_waits_and_later_waits_return_at_once() -> None:
    notifier = Notifier()
    with notifier.admit():
        held = asyncio.create_task(notifier.wait(NAME, 60))
        for _ in range(1000):  # let the task reach its wait
            if notifier.watched(NAME):
                break
            await asyncio.sleep(0)
        notifier.drain()
        assert notifier.draining
        assert (await asyncio.wait_for(held, 1)).notified
        assert (await asyncio.wait_for(notifier.wait(NAME, 60), 1)).notified
