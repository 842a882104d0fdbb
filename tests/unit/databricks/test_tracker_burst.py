"""Batched tracking under a burst, on fake time: a workspace limited to 20 calls/s, a burst
of starts, and a family whose list pages each cost a call, as runs/list does.

The walk of a family's lists serves every due operation in one cadence whatever their due
times; single reads happen only for runs the lists do not show; starts never wait behind
polls for the workspace's tokens.
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Sequence

from engine_fakes import NO_DATABRICKS, FakeBatchFamily
from google.protobuf.message import Message

from lro_server.core.operations import OperationsService
from lro_server.core.principal import Principal
from lro_server.databricks.client import Databricks
from lro_server.databricks.family import Observation, Tracked
from lro_server.databricks.limiter import RateLimiter
from lro_server.databricks.tracker import Tracker
from lro_server.databricks.tracker_state import TrackerOptions
from lro_server.databricks.work import Entity, Work, new_payload
from lro_server.testing import MemoryStore
from lro_server.testing.clock import FakeClock

ALICE = Principal(subject="alice")
PAGE = 25
RATE = 20.0


class PagedFamily(FakeBatchFamily):
    """A listing family behind a workspace limiter: every start, read and list page takes a
    token; the lists show the runs not ended, newest first, ``PAGE`` a page."""

    name = "paged"

    def __init__(self, limiter: RateLimiter, clock: FakeClock) -> None:
        super().__init__()
        self.limiter = limiter
        self.clock = clock
        self.calls: collections.Counter[str] = collections.Counter()
        self.started_at: list[float] = []

    async def start(
        self, dbx: Databricks, work: Work, token: str, *, retry: bool = False
    ) -> Entity:
        await self.limiter.acquire()
        self.calls["start"] += 1
        self.started_at.append(self.clock.monotonic())
        entity = await super().start(dbx, work, token, retry=retry)
        self.states[entity.run_id] = "RUNNING"
        return entity

    async def observe(self, dbx: Databricks, work: Work, metadata: Message | None) -> Observation:
        await self.limiter.acquire()
        self.calls["get"] += 1
        return await super().observe(dbx, work, metadata)

    async def observe_many(
        self, dbx: Databricks, tracked: Sequence[Tracked]
    ) -> list[Observation | None]:
        active = sorted(
            (run for run, state in self.states.items() if state in ("PENDING", "RUNNING")),
            reverse=True,
        )
        wanted = {work.ids.run_id for work, _ in tracked}
        seen: set[int] = set()
        for start in range(0, max(1, len(active)), PAGE):
            await self.limiter.acquire()
            self.calls["list"] += 1
            seen.update(run for run in active[start : start + PAGE] if run in wanted)
            if seen == wanted:
                break
        return [self.judge(work) if work.ids.run_id in seen else None for work, _ in tracked]


async def _burst(count: int, interval: float) -> tuple[PagedFamily, FakeClock, float]:
    """Start ``count`` operations together (32 at a time, as a client pool would); returns
    the family, the clock and how long the starts took."""
    clock = FakeClock()
    limiter = RateLimiter(RATE, clock=clock)
    family = PagedFamily(limiter, clock)
    store = MemoryStore(clock)
    options = TrackerOptions(
        holder="replica-a",
        poll_interval_seconds=interval,
        max_poll_interval_seconds=interval,
        first_poll_seconds=1.0,
    )
    tracker = Tracker(store, NO_DATABRICKS, {family.name: family}, options, clock=clock)
    service = OperationsService(store, tracker, clock=clock)
    loop = asyncio.create_task(tracker.run())
    slots = asyncio.Semaphore(32)

    async def start_one() -> None:
        async with slots:
            await service.start(
                caller=ALICE,
                method="test.v1.Runs/Run",
                family=family.name,
                payload=new_payload("run", {"job_id": 1}),
                timeout_seconds=3600.0,
            )

    began = clock.monotonic()
    starts = asyncio.gather(*(start_one() for _ in range(count)))
    while not starts.done():
        await clock.advance(0.05)
    await starts
    took = family.started_at[-1] - began
    family.tracker_loop = loop  # type: ignore[attr-defined]
    family.tracker = tracker  # type: ignore[attr-defined]
    return family, clock, took


async def _stop(family: PagedFamily) -> None:
    loop: asyncio.Task[None] = family.tracker_loop  # type: ignore[attr-defined]
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)
    await family.tracker.stop()  # type: ignore[attr-defined]


async def test_a_burst_of_starts_waits_for_no_poll_and_then_one_walk_per_cadence() -> None:
    count, interval = 250, 2.0
    family, clock, took = await _burst(count, interval)
    try:
        # 250 starts at 20 calls/s after a burst of 20: no token went to a poll meanwhile.
        assert took <= (count - RATE) / RATE + 0.1, took
        polls_during_starts = family.calls["list"] + family.calls["get"]
        before = collections.Counter(family.calls)
        await clock.advance(60.0)
        window = family.calls - before
    finally:
        await _stop(family)
    pages = math.ceil(count / PAGE)
    assert polls_during_starts == 0
    assert window["get"] == 0  # every run is on the lists
    # A walk of every page at most once per interval (plus the walk under way as the
    # window opened): never more calls than that.
    assert window["list"] <= pages * (60.0 / interval + 1)
    per_run_per_minute = window["list"] / count
    per_run_polling = 60.0 / interval  # a runs/get per run per interval
    assert per_run_per_minute <= per_run_polling / 20, per_run_per_minute


async def test_runs_that_left_the_lists_are_read_alone_once() -> None:
    family, clock, _ = await _burst(30, 2.0)
    try:
        await clock.advance(4.0)
        ended = sorted(family.states)[:5]
        for run_id in ended:
            family.states[run_id] = "SUCCESS"
        before = collections.Counter(family.calls)
        await clock.advance(10.0)
        window = family.calls - before
        assert sorted(family.observed[-5:]) == ended
    finally:
        await _stop(family)
    assert window["get"] == 5  # the five that ended, once each; the rest from the lists
    assert window["list"] >= 1


async def test_a_cancel_does_not_wait_for_the_next_walk() -> None:
    family, clock, _ = await _burst(10, 5.0)
    tracker: Tracker = family.tracker  # type: ignore[attr-defined]
    try:
        await clock.advance(1.5)  # a walk just ran: the next one is 5 s away
        name = tracker.schedule.names()[0]
        service = OperationsService(tracker.store, tracker, clock=clock)
        await service.cancel(name, ALICE)
        await clock.advance(0.0)
        assert len(family.cancels) == 1
    finally:
        await _stop(family)
