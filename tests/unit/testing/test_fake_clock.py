"""FakeClock: time moves only when told; sleeps, timeouts and timers wait for fake time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from lro_server.core.clock import Clock, to_micros
from lro_server.testing.clock import DEFAULT_START, FakeClock


def test_time_stands_still_until_moved() -> None:
    clock: Clock = FakeClock()
    assert clock.now() == DEFAULT_START == clock.now()
    assert clock.monotonic() == clock.monotonic()


def test_step_and_set() -> None:
    clock = FakeClock()
    mono = clock.monotonic()
    clock.step(1.5)
    assert clock.now() == DEFAULT_START + timedelta(seconds=1.5)
    assert clock.monotonic() == mono + 1.5
    clock.set(datetime(2024, 6, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))))
    assert clock.now() == datetime(2024, 6, 1, tzinfo=UTC)
    assert clock.now().tzinfo is UTC
    assert to_micros(clock.now()) == to_micros(datetime(2024, 6, 1, tzinfo=UTC))
    assert clock.monotonic() == mono + 1.5  # a wall-clock jump is not monotonic time


async def test_invalid_moves_are_refused() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError, match="negative"):
        clock.step(-1)
    with pytest.raises(ValueError, match="negative"):
        await clock.advance(-1)
    with pytest.raises(ValueError, match="timezone"):
        clock.set(datetime(2025, 1, 1))  # naive on purpose
    with pytest.raises(ValueError, match="timezone"):
        FakeClock(datetime(2025, 1, 1))


async def test_sleep_waits_for_fake_time_and_is_recorded() -> None:
    clock = FakeClock()
    woke: list[float] = []

    async def sleeper() -> None:
        await clock.sleep(2)
        woke.append(clock.monotonic())

    start = clock.monotonic()
    task = asyncio.create_task(sleeper())
    await clock.advance(1.999)
    assert woke == []
    await clock.advance(0.001)
    assert woke == [start + 2]
    await task
    assert clock.sleeps == [2]


async def test_advance_wakes_repeated_sleepers_at_each_due_time() -> None:
    clock = FakeClock()
    seen: list[float] = []

    async def ticker() -> None:
        while True:
            await clock.sleep(1)
            seen.append(clock.monotonic())

    start = clock.monotonic()
    task = asyncio.create_task(ticker())
    await clock.advance(3.5)
    assert seen == [start + 1, start + 2, start + 3]
    assert clock.monotonic() == start + 3.5
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.pending == 0  # a cancelled sleep leaves no timer behind


async def test_timeout_fires_at_fake_time_and_not_before() -> None:
    clock = FakeClock()
    event = asyncio.Event()
    outcome: list[str] = []

    async def waiter() -> None:
        try:
            async with clock.timeout(5):
                await event.wait()
            outcome.append("woken")
        except TimeoutError:
            outcome.append("timed out")

    task = asyncio.create_task(waiter())
    await clock.advance(4.9)
    assert outcome == []
    await clock.advance(0.1)
    await task
    assert outcome == ["timed out"]


async def test_timeout_that_is_not_reached_leaves_no_timer() -> None:
    clock = FakeClock()
    event = asyncio.Event()
    event.set()
    async with clock.timeout(5):
        await event.wait()
    assert clock.pending == 0


async def test_call_later_in_order_and_cancellable() -> None:
    clock = FakeClock()
    fired: list[str] = []
    clock.call_later(2, lambda: fired.append("b"))
    clock.call_later(1, lambda: fired.append("a"))
    cancelled = clock.call_later(1.5, lambda: fired.append("never"))
    cancelled.cancel()
    assert clock.next_due() == 1
    clock.step(5)
    assert fired == ["a", "b"]
    assert clock.next_due() is None
