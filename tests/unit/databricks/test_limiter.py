"""The workspace rate limiter on fake time: its rate, 429 pauses, and urgent calls first."""

from __future__ import annotations

import asyncio

import pytest

from lro_server.databricks.limiter import RateLimiter, is_urgent, urgent
from lro_server.testing.clock import FakeClock


async def _taker(limiter: RateLimiter, clock: FakeClock, log: list[tuple[str, float]], tag: str):  # type: ignore[no-untyped-def]
    await limiter.acquire()
    log.append((tag, round(clock.monotonic() - 1000.0, 3)))


async def test_tokens_come_at_the_rate_after_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock)
    log: list[tuple[str, float]] = []
    tasks = [asyncio.create_task(_taker(limiter, clock, log, f"c{i}")) for i in range(15)]
    await clock.advance(0.0)
    assert len(log) == 10  # the burst: one second's worth at once
    await clock.advance(0.5)
    assert [t for _, t in log[10:]] == [0.1, 0.2, 0.3, 0.4, 0.5]
    await asyncio.gather(*tasks)
    assert limiter.waits == 5


async def test_a_pause_holds_every_caller_until_it_ends() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, clock=clock)
    limiter.pause(2.0)
    log: list[tuple[str, float]] = []
    tasks = [asyncio.create_task(_taker(limiter, clock, log, t)) for t in ("a", "b")]
    await clock.advance(1.9)
    assert log == []
    await clock.advance(0.1)
    assert [t for _, t in log] == [2.0, 2.0]
    await asyncio.gather(*tasks)


async def test_urgent_calls_take_the_next_token_before_waiting_polls() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, clock=clock)
    await limiter.acquire()  # the bucket is empty now
    log: list[tuple[str, float]] = []
    polls = [asyncio.create_task(_taker(limiter, clock, log, f"poll{i}")) for i in range(3)]
    await clock.advance(0.5)

    async def start(tag: str) -> None:
        with urgent():
            assert is_urgent()
            await _taker(limiter, clock, log, tag)

    starts = [asyncio.create_task(start(f"start{i}")) for i in range(2)]
    await clock.advance(5.0)
    # The polls queued first, yet each of the next tokens went to a start.
    assert log == [
        ("start0", 1.0),
        ("start1", 2.0),
        ("poll0", 3.0),
        ("poll1", 4.0),
        ("poll2", 5.0),
    ]
    await asyncio.gather(*polls, *starts)
    assert not is_urgent()


async def test_a_burst_of_starts_is_never_delayed_by_polls() -> None:
    clock = FakeClock()
    limiter = RateLimiter(20, clock=clock)
    served: list[str] = []

    async def poll() -> None:
        while True:
            await limiter.acquire()
            served.append("poll")

    async def start() -> None:
        with urgent():
            await limiter.acquire()
        served.append("start")

    pollers = [asyncio.create_task(poll()) for _ in range(50)]
    await clock.advance(1.0)
    starts = [asyncio.create_task(start()) for _ in range(100)]
    await clock.advance(5.0)
    await asyncio.gather(*starts)
    first_start = served.index("start")
    last_start = len(served) - 1 - served[::-1].index("start")
    # Once the starts arrived, no poll got a token until all 100 were served: 100 tokens
    # at 20/s is 5 s, exactly the time they took.
    assert served[first_start : last_start + 1] == ["start"] * 100
    for task in pollers:
        task.cancel()
    await asyncio.gather(*pollers, return_exceptions=True)


async def test_a_cancelled_waiter_gives_its_turn_away() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, clock=clock)
    await limiter.acquire()
    log: list[tuple[str, float]] = []
    gone = asyncio.create_task(_taker(limiter, clock, log, "gone"))
    kept = asyncio.create_task(_taker(limiter, clock, log, "kept"))
    await clock.advance(0.5)
    gone.cancel()
    await clock.advance(1.0)
    assert log == [("kept", 1.0)]
    assert limiter.waiting == 0
    with pytest.raises(asyncio.CancelledError):
        await gone
    await kept


def test_a_rate_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="per_second"):
        RateLimiter(0)
