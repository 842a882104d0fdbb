"""FakeClock: time moves only when told, and sleeping moves it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from lro_server.core.clock import Clock, to_micros
from lro_server.testing.clock import DEFAULT_START, FakeClock


def test_time_stands_still_until_moved() -> None:
    clock: Clock = FakeClock()
    assert clock.now() == DEFAULT_START == clock.now()


def test_advance_and_set() -> None:
    clock = FakeClock()
    clock.advance(1.5)
    assert clock.now() == DEFAULT_START + timedelta(seconds=1.5)
    clock.set(datetime(2024, 6, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))))
    assert clock.now() == datetime(2024, 6, 1, tzinfo=UTC)
    assert clock.now().tzinfo is UTC
    assert to_micros(clock.now()) == to_micros(datetime(2024, 6, 1, tzinfo=UTC))


def test_invalid_moves_are_refused() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError, match="negative"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="timezone"):
        clock.set(datetime(2025, 1, 1))  # naive on purpose
    with pytest.raises(ValueError, match="timezone"):
        FakeClock(datetime(2025, 1, 1))


async def test_sleep_advances_time_records_it_and_lets_others_run() -> None:
    clock = FakeClock()
    ran = asyncio.Event()

    async def other() -> None:
        ran.set()

    task = asyncio.create_task(other())
    await clock.sleep(2)
    await clock.sleep(-1)

    assert ran.is_set()
    assert clock.now() == DEFAULT_START + timedelta(seconds=2)
    assert clock.sleeps == [2, 0.0]
    await task
