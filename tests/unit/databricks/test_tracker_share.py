"""Replicas share the tracked operations evenly, on fake time: four trackers over one
in-memory database, with work started unevenly, and two of them dying."""

from __future__ import annotations

import asyncio
import collections

from engine_fakes import NO_DATABRICKS, FakeFamily

from lro_server.core.operations import OperationsService
from lro_server.core.principal import Principal
from lro_server.databricks.tracker import Tracker
from lro_server.databricks.tracker_state import TrackerOptions
from lro_server.databricks.work import new_payload
from lro_server.testing import MemoryData, MemoryStore
from lro_server.testing.clock import FakeClock

ALICE = Principal(subject="alice")
LEASE = 30.0


class Fleet:
    def __init__(self, count: int) -> None:
        self.clock = FakeClock()
        self.data = MemoryData()
        self.family = FakeFamily()
        self.trackers: list[Tracker] = []
        self.services: list[OperationsService] = []
        self.loops: list[asyncio.Task[None]] = []
        for index in range(count):
            store = MemoryStore(self.clock, data=self.data)
            options = TrackerOptions(
                holder=f"replica-{index}",
                lease_seconds=LEASE,
                poll_interval_seconds=5.0,
                max_poll_interval_seconds=5.0,
                pseudo_holders=frozenset({"lro-resume"}),
            )
            tracker = Tracker(
                store, NO_DATABRICKS, {"fake": self.family}, options, clock=self.clock
            )
            self.trackers.append(tracker)
            self.services.append(OperationsService(store, tracker, clock=self.clock))

    async def start(self, replica: int, count: int) -> None:
        for _ in range(count):
            await self.services[replica].start(
                caller=ALICE,
                method="test.v1.Runs/Run",
                family="fake",
                payload=new_payload("run", {"job_id": 1}),
                timeout_seconds=3600.0,
            )

    def run(self) -> None:
        for run_id in range(0, 10_000):
            self.family.states[run_id] = "RUNNING"
        self.loops = [asyncio.create_task(t.run()) for t in self.trackers]

    def kill(self, replica: int) -> None:
        """Dies without a word: no release, its leases run out."""
        self.loops[replica].cancel()

    async def shares(self) -> collections.Counter[str]:
        """Operations by live lease holder, as the store counts them."""
        holders = await MemoryStore(self.clock, data=self.data).lease_holders()
        return collections.Counter({h: n for h, n in holders.items() if h})

    async def stop(self) -> None:
        for loop in self.loops:
            loop.cancel()
        await asyncio.gather(*self.loops, return_exceptions=True)


async def test_work_started_unevenly_spreads_over_the_replicas() -> None:
    fleet = Fleet(4)
    await fleet.start(0, 100)
    for replica in (1, 2, 3):
        await fleet.start(replica, 20)  # 160 operations, 100 of them on replica-0
    fleet.run()
    try:
        await fleet.clock.advance(LEASE)  # a few claims each
        shares = await fleet.shares()
    finally:
        await fleet.stop()
    assert sum(shares.values()) == 160
    for holder in ("replica-0", "replica-1", "replica-2", "replica-3"):
        assert 30 <= shares[holder] <= 50, shares  # 40 each, within 25% ± 10% of 160


async def test_the_work_of_two_dead_replicas_is_shared_by_the_survivors() -> None:
    fleet = Fleet(4)
    for replica in range(4):
        await fleet.start(replica, 50)
    fleet.run()
    try:
        await fleet.clock.advance(1.0)
        fleet.kill(2)
        fleet.kill(3)
        await fleet.clock.advance(LEASE + LEASE / 3 + 1)  # expired, then a claim each
        shares = await fleet.shares()
        tracked = [len(fleet.trackers[i].schedule.names()) for i in (0, 1)]
    finally:
        await fleet.stop()
    assert set(shares) == {"replica-0", "replica-1"}
    assert sum(shares.values()) == 200
    assert all(80 <= shares[h] <= 120 for h in shares), shares  # half each, ± 10% of 200
    assert sorted(tracked) == sorted(shares.values())
