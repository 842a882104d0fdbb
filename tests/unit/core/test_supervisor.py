"""The supervisor: a loop that dies is logged, restarted with backoff, and reported down.

Time is a FakeClock: the supervisor's waits between restarts end when the test advances
it, and the tests read the waits back from ``clock.sleeps``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from lro_server.core.supervisor import Supervisor, describe
from lro_server.testing.clock import FakeClock


class Loop:
    """A loop body under test's control: dies while ``failures`` remain, else runs until
    cancelled; records each start."""

    def __init__(self, failures: int = 0, error: Callable[[], BaseException] | None = None):
        self.failures = failures
        self.error = error or (lambda: RuntimeError("injected bug"))
        self.starts = 0
        self.running = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.release = asyncio.Event()  # set: the next run returns instead of blocking

    async def __call__(self) -> None:
        self.starts += 1
        if self.failures > 0:
            self.failures -= 1
            raise self.error()
        self.running.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        self.running.clear()
        self.release.clear()


async def _advance_until(clock: FakeClock, predicate: Callable[[], bool]) -> None:
    """Advance fake time in small steps until ``predicate`` holds (at most a fake hour)."""
    for _ in range(14_400):
        if predicate():
            return
        await clock.advance(0.25)
    raise AssertionError("the condition never held")


async def _until(predicate: Callable[[], bool]) -> None:
    """Let the loop run until ``predicate`` holds (fake time: no real waiting)."""
    for _ in range(10_000):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def test_a_loop_that_dies_is_logged_and_restarted_with_doubling_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    supervisor = Supervisor(clock, first_backoff=0.5, max_backoff=3.0)
    body = Loop(failures=5)

    with caplog.at_level(logging.WARNING, logger="lro_server.core.supervisor"):
        loop = supervisor.start("tracker", body)
        await _advance_until(clock, body.running.is_set)

    assert body.starts == 6
    assert clock.sleeps == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert (loop.restarts, supervisor.restarts) == (5, 5)
    assert supervisor.down == {} and not loop.down
    deaths = [r for r in caplog.records if "died" in r.getMessage()]
    assert len(deaths) == 5
    assert all(r.exc_info and "injected bug" in str(r.exc_info[1]) for r in deaths)
    await supervisor.stop()


async def test_while_a_loop_is_down_it_is_reported_with_the_reason_and_listeners_are_told() -> None:
    clock = FakeClock()
    supervisor = Supervisor(clock, first_backoff=1.0, max_backoff=8.0)
    seen: list[dict[str, str]] = []

    async def listener() -> None:
        seen.append(supervisor.down)

    supervisor.add_listener(listener)
    body = Loop(failures=1, error=lambda: ValueError("bad state"))
    supervisor.start("waiter", body)
    await _advance_until(clock, body.running.is_set)

    assert seen == [
        {"waiter": "background loop waiter died (ValueError: bad state); restarting in 1s"},
        {},
    ]
    await supervisor.stop()


async def test_the_loop_is_down_exactly_during_the_wait_before_its_restart() -> None:
    clock = FakeClock()
    gate = asyncio.Event()
    waits: list[float] = []

    class GatedClock(FakeClock):
        async def sleep(self, seconds: float) -> None:
            waits.append(seconds)
            await gate.wait()
            gate.clear()

    supervisor = Supervisor(GatedClock(clock.now()), first_backoff=0.5)
    body = Loop(failures=1)
    loop = supervisor.start("tracker", body)

    await _until(lambda: bool(waits))
    assert loop.down and "tracker" in supervisor.down and not body.running.is_set()
    gate.set()
    await asyncio.wait_for(body.running.wait(), 5)
    assert not loop.down and supervisor.down == {}
    await supervisor.stop()


async def test_a_run_that_lasted_resets_the_backoff() -> None:
    clock = FakeClock()
    supervisor = Supervisor(clock, first_backoff=0.5, max_backoff=4.0)
    body = Loop(failures=3)
    supervisor.start("sweep", body)
    await _advance_until(clock, body.running.is_set)
    assert clock.sleeps == [0.5, 1.0, 2.0]

    await clock.advance(4.0)  # this run lasted max_backoff: the next death starts over
    body.failures = 1
    body.release.set()  # the run returns, which is a death too
    await _advance_until(clock, lambda: body.starts == 6 and body.running.is_set())

    assert clock.sleeps == [0.5, 1.0, 2.0, 0.5, 1.0]
    await supervisor.stop()


async def test_a_loop_that_returns_counts_as_dead_and_runs_again() -> None:
    clock = FakeClock()
    supervisor = Supervisor(clock, first_backoff=0.25)
    seen: list[dict[str, str]] = []

    async def listener() -> None:
        seen.append(supervisor.down)

    supervisor.add_listener(listener)
    body = Loop()
    supervisor.start("health", body)
    await _advance_until(clock, body.running.is_set)
    body.release.set()
    await _advance_until(clock, lambda: body.starts == 2 and body.running.is_set())

    assert "it returned" in seen[0]["health"]
    assert clock.sleeps == [0.25]
    await supervisor.stop()


async def test_a_cancelled_error_from_inside_the_loop_is_a_death_not_a_stop() -> None:
    clock = FakeClock()
    supervisor = Supervisor(clock)
    body = Loop(failures=1, error=asyncio.CancelledError)
    loop = supervisor.start("tracker", body)

    await _advance_until(clock, body.running.is_set)

    assert loop.restarts == 1
    await supervisor.stop()


async def test_stop_cancels_every_loop_and_is_no_failure() -> None:
    clock = FakeClock()
    supervisor = Supervisor(clock)
    told: list[object] = []

    async def listener() -> None:
        told.append(supervisor.down)

    supervisor.add_listener(listener)
    bodies = [Loop(), Loop(), Loop()]
    loops = [supervisor.start(f"loop-{i}", body) for i, body in enumerate(bodies)]
    for body in bodies:
        await asyncio.wait_for(body.running.wait(), 5)

    await loops[0].stop()
    assert bodies[0].cancelled.is_set() and not bodies[1].cancelled.is_set()
    assert [loop.name for loop in supervisor.loops] == ["loop-1", "loop-2"]
    await supervisor.stop()
    await supervisor.stop()
    await loops[0].stop()

    assert all(body.cancelled.is_set() for body in bodies)
    assert supervisor.loops == [] and supervisor.down == {}
    assert told == [] and clock.sleeps == []


async def test_stop_during_the_backoff_ends_the_loop_for_good() -> None:
    gate = asyncio.Event()

    class StuckClock(FakeClock):
        async def sleep(self, seconds: float) -> None:
            await gate.wait()

    supervisor = Supervisor(StuckClock())
    body = Loop(failures=1)
    loop = supervisor.start("tracker", body)
    await _until(lambda: loop.down)

    await supervisor.stop()
    gate.set()
    await asyncio.sleep(0)

    assert body.starts == 1 and supervisor.down == {}


async def test_names_are_unique_while_running_and_free_after_stop() -> None:
    supervisor = Supervisor(FakeClock())
    loop = supervisor.start("tracker", Loop())
    with pytest.raises(ValueError, match="tracker"):
        supervisor.start("tracker", Loop())
    await loop.stop()
    again = supervisor.start("tracker", Loop())
    await again.stop()


async def test_a_failing_listener_does_not_stop_the_supervision(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    supervisor = Supervisor(clock)

    async def broken() -> None:
        raise RuntimeError("listener bug")

    supervisor.add_listener(broken)
    body = Loop(failures=2)
    supervisor.start("tracker", body)
    await _advance_until(clock, body.running.is_set)

    assert body.starts == 3
    assert any("listener failed" in r.getMessage() for r in caplog.records)
    await supervisor.stop()


def test_backoff_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        Supervisor(FakeClock(), first_backoff=0)
    with pytest.raises(ValueError):
        Supervisor(FakeClock(), first_backoff=2, max_backoff=1)


def test_a_task_group_of_one_failure_is_described_by_that_failure() -> None:
    inner = RuntimeError("injected bug")
    group = ExceptionGroup("unhandled errors in a TaskGroup", [inner])
    assert describe(ExceptionGroup("outer", [group])) == "RuntimeError: injected bug"
    two = ExceptionGroup("two", [inner, ValueError("v")])
    assert describe(two).startswith("ExceptionGroup: two")
