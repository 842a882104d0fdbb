"""Notifier: waiters woken with the writer's record, timeouts, the waiter cap."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from google.longrunning import operations_pb2

from lro_server.core.errors import ResourceExhausted
from lro_server.core.notify import Notifier
from lro_server.core.record import OperationRecord

NAME = "operations/6f1c1a52-3d8e-4d8a-9a55-2a4f3f9a2b10"


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def test_notify_hands_the_record_to_every_waiter() -> None:
    notifier = Notifier()
    record = OperationRecord(operation=operations_pb2.Operation(name=NAME, done=True), version=3)
    waits = [asyncio.create_task(notifier.wait(NAME, 5)) for _ in range(3)]
    await _until(lambda: notifier.watched(NAME) == 3)
    notifier.notify(NAME, record)
    wakes = await asyncio.gather(*waits)
    assert all(w.notified and w.record is record for w in wakes)
    assert notifier.watched(NAME) == 0


async def test_notify_without_record_wakes_with_none() -> None:
    notifier = Notifier()
    wait = asyncio.create_task(notifier.wait(NAME, 5))
    await _until(lambda: notifier.watched(NAME) == 1)
    notifier.notify(NAME)
    wake = await wait
    assert wake and wake.record is None


async def test_timeout_is_falsy() -> None:
    wake = await Notifier().wait(NAME, 0.01)
    assert not wake and wake.record is None


async def test_cap_counts_admitted_calls_and_refuses_with_resource_exhausted() -> None:
    notifier = Notifier(max_waiters=2)
    with notifier.admit(), notifier.admit():
        assert notifier.waiters == 2
        with pytest.raises(ResourceExhausted):
            notifier.admit()
        # An admitted call keeps its slot between two waits.
        assert not await notifier.wait(NAME, 0.001)
        assert notifier.waiters == 2
    assert notifier.waiters == 0
    with notifier.admit():
        assert notifier.waiters == 1
