"""The tracker on the in-memory store, a fake Databricks family and fake time.

Starts (inside the RPC, deferred, refused), polls and their back-off, outcomes, deadlines,
cancel, lost compare-and-set races, Databricks' refusals against the store's answers,
leases between two replicas, and batched polling — without Databricks, sockets or sleeps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest
from engine_fakes import NO_DATABRICKS, FakeBatchFamily, FakeFamily, MeddlingStore, bump

from lro_server._proto.lro.databricks.v1 import jobs_pb2
from lro_server.core.errors import (
    Code,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Origin,
    Unavailable,
)
from lro_server.core.names import operation_id
from lro_server.core.operations import OperationsService
from lro_server.core.principal import Principal
from lro_server.core.record import OperationRecord
from lro_server.core.store import ListQuery
from lro_server.databricks.tracker import Tracker
from lro_server.databricks.tracker_state import TrackerOptions
from lro_server.databricks.work import Work, new_payload
from lro_server.testing import MemoryData, MemoryStore
from lro_server.testing.clock import FakeClock

ALICE = Principal(subject="alice")
OPTIONS = TrackerOptions(
    holder="replica-a",
    lease_seconds=30.0,
    poll_interval_seconds=5.0,
    max_poll_interval_seconds=20.0,
    first_poll_seconds=1.0,
    backoff=2.0,
)


@dataclasses.dataclass
class Rig:
    clock: FakeClock
    store: MeddlingStore
    family: FakeFamily
    tracker: Tracker
    service: OperationsService

    async def start(self, *, timeout: float = 600.0, family: str | None = None) -> str:
        operation = await self.service.start(
            caller=ALICE,
            method="test.v1.Runs/Run",
            family=family or self.family.name,
            payload=new_payload("run", {"job_id": 1}),
            timeout_seconds=timeout,
        )
        return str(operation.name)

    async def record(self, name: str) -> OperationRecord:
        return await self.store.get(name)

    async def run_id(self, name: str) -> int:
        return Work.of(await self.record(name)).ids.run_id


def _rig(family: FakeFamily | None = None, data: MemoryData | None = None) -> Rig:
    clock = FakeClock()
    store = MeddlingStore(MemoryStore(clock, data=data))
    family = family or FakeFamily()
    tracker = Tracker(store, NO_DATABRICKS, {family.name: family}, OPTIONS, clock=clock)
    service = OperationsService(store, tracker, clock=clock)
    return Rig(clock, store, family, tracker, service)


@pytest.fixture
async def rig() -> Rig:
    return _rig()


@pytest.fixture
async def running(rig: Rig):  # type: ignore[no-untyped-def]
    """The rig with the tracker's loop running on fake time."""
    task = asyncio.create_task(rig.tracker.run())
    yield rig
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await rig.tracker.stop()


# --- starting ---------------------------------------------------------------------------


async def test_a_start_reaches_databricks_inside_the_rpc_with_the_operation_id(rig: Rig) -> None:
    name = await rig.start()

    record = await rig.record(name)
    assert rig.family.starts == [(operation_id(name), False)]
    assert Work.of(record).started and await rig.run_id(name) == 101
    assert record.lease_holder == "replica-a"
    assert record.state == "" and not record.done


async def test_a_start_without_request_id_writes_its_operation_once(rig: Rig) -> None:
    creates: list[OperationRecord] = []
    create = rig.store.inner.create

    async def counted(record: OperationRecord):  # type: ignore[no-untyped-def]
        creates.append(record)
        return await create(record)

    rig.store.inner.create = counted  # type: ignore[method-assign]
    name = await rig.start()

    stored = await rig.record(name)
    assert len(creates) == 1 and rig.store.updates == 0
    assert stored.version == 1 and Work.of(stored).ids.run_id == 101


async def test_a_start_with_a_request_id_is_stored_before_databricks_is_called(rig: Rig) -> None:
    stored_first: list[bool] = []
    start = rig.family.start

    async def checking(dbx, work, token, *, retry=False):  # type: ignore[no-untyped-def]
        listed = await rig.store.list(ListQuery(None, None, None, 10))
        stored_first.append(len(listed) == 1)
        return await start(dbx, work, token, retry=retry)

    rig.family.start = checking  # type: ignore[method-assign]
    operation = await rig.service.start(
        caller=ALICE,
        method="test.v1.Runs/Run",
        family=rig.family.name,
        payload=new_payload("run", {"job_id": 1}),
        timeout_seconds=600.0,
        request_id="req-1",
    )

    assert stored_first == [True]  # a retry with the same id finds it, and its run
    assert (await rig.record(operation.name)).version == 2


async def test_work_started_for_a_record_that_cannot_be_stored_is_cancelled(rig: Rig) -> None:
    async def down(record: OperationRecord):  # type: ignore[no-untyped-def]
        raise Unavailable("store down", origin=Origin.STORE)

    rig.store.inner.create = down  # type: ignore[method-assign]
    with pytest.raises(Unavailable):
        await rig.start()

    assert len(rig.family.starts) == 1
    assert rig.family.cancels == [101]  # the caller's retry will not leave two running


async def test_a_refused_start_fails_the_rpc_and_leaves_nothing(rig: Rig) -> None:
    rig.family.fail_next["start"] = InvalidArgument("bad job", origin=Origin.DATABRICKS)
    with pytest.raises(InvalidArgument, match="bad job"):
        await rig.start()
    assert await rig.store.list(ListQuery(None, None, None, 10)) == []
    assert len(rig.family.starts) == 1


async def test_a_start_during_an_outage_is_deferred_and_retried_with_the_same_token(
    running: Rig,
) -> None:
    running.family.fail_next["start"] = Unavailable(
        "Databricks is unavailable: 503", origin=Origin.DATABRICKS
    )
    name = await running.start()
    deferred = await running.record(name)
    assert not Work.of(deferred).started
    # The operation says so: live state and the metadata's state and message.
    assert deferred.state == "START_DEFERRED"
    metadata = _metadata(deferred)
    assert metadata.life_cycle_state == "START_DEFERRED"
    assert metadata.state_message.startswith("Databricks is unavailable: 503; the start is")

    await running.clock.advance(5.0)

    assert running.family.starts == [(operation_id(name), False), (operation_id(name), True)]
    started = await running.record(name)
    assert Work.of(started).started and started.state != "START_DEFERRED"
    assert _metadata(started).life_cycle_state != "START_DEFERRED"
    assert _metadata(started).state_message == ""


# --- polling --------------------------------------------------------------------------------


async def test_polls_back_off_while_nothing_changes_and_write_only_changes(running: Rig) -> None:
    name = await running.start()
    running.family.states[await running.run_id(name)] = "RUNNING"
    start = running.clock.monotonic()
    polled: list[float] = []
    observe = running.family.observe

    async def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
        polled.append(running.clock.monotonic() - start)
        return await observe(*args, **kwargs)

    running.family.observe = timed  # type: ignore[method-assign]
    await running.clock.advance(60.0)

    # First poll after first_poll_seconds (it sees the change to RUNNING: next in 5 s),
    # then the interval doubles while nothing changes, up to 20 s.
    assert [round(t, 3) for t in polled] == [1.0, 6.0, 16.0, 36.0, 56.0]
    record = await running.record(name)
    assert record.state == "RUNNING"
    assert record.version == 2  # created with the entity, RUNNING written once


async def test_a_success_finishes_with_the_response(running: Rig) -> None:
    name = await running.start()
    running.family.states[await running.run_id(name)] = "SUCCESS"
    await running.clock.advance(2.0)

    record = await running.record(name)
    assert record.done and record.operation.HasField("response")
    assert name not in running.tracker.schedule


async def test_a_failure_is_the_operations_error(running: Rig) -> None:
    name = await running.start()
    run_id = await running.run_id(name)
    running.family.states[run_id] = "FAILED"
    await running.clock.advance(2.0)

    error = (await running.record(name)).operation.error
    assert (error.code, error.message) == (Code.UNKNOWN, f"run {run_id} FAILED")


async def test_the_deadline_cancels_the_work_and_fails_deadline_exceeded(running: Rig) -> None:
    name = await running.start(timeout=30.0)
    run_id = await running.run_id(name)
    running.family.states[run_id] = "RUNNING"

    await running.clock.advance(29.0)
    assert not (await running.record(name)).done
    await running.clock.advance(25.0)

    record = await running.record(name)
    assert record.done and record.state == "TIMED_OUT"
    assert record.operation.error.code == Code.DEADLINE_EXCEEDED
    assert "timeout of 30s" in record.operation.error.message
    assert running.family.cancels == [run_id]


async def test_cancel_is_sent_once_and_ends_cancelled(running: Rig) -> None:
    name = await running.start()
    run_id = await running.run_id(name)
    running.family.states[run_id] = "RUNNING"
    await running.clock.advance(2.0)

    await running.service.cancel(name, ALICE)
    await running.clock.advance(0.0)
    assert running.family.cancels == [run_id]
    stored = await running.record(name)
    assert Work.of(stored).cancel_sent and stored.cancel_requested

    await running.service.cancel(name, ALICE)  # a second request sends nothing more
    running.family.states[run_id] = "CANCELED"
    await running.clock.advance(0.0)

    record = await running.record(name)
    assert running.family.cancels == [run_id]
    assert record.operation.error.code == Code.CANCELLED
    assert record.operation.error.message == f"operation cancelled: run {run_id} CANCELED"


async def test_an_observation_is_applied_again_over_a_concurrent_cancel(rig: Rig) -> None:
    name = await rig.start()
    rig.family.states[await rig.run_id(name)] = "RUNNING"

    async def cancel_arrives(_: object) -> None:
        await bump(rig.store.inner, name, cancel_requested=True)

    rig.store.before_update(name, cancel_arrives)
    await rig.tracker.poller.poll(name)

    record = await rig.record(name)
    assert record.cancel_requested and record.state == "RUNNING"  # neither write lost


async def test_databricks_refusing_a_read_fails_the_operation(rig: Rig) -> None:
    name = await rig.start()
    rig.family.fail_next["observe"] = NotFound("Run 101 does not exist", origin=Origin.DATABRICKS)
    await rig.tracker.poller.poll(name)

    error = (await rig.record(name)).operation.error
    assert (error.code, error.message) == (Code.NOT_FOUND, "Run 101 does not exist")


async def test_an_operation_deleted_meanwhile_is_dropped_not_failed(rig: Rig) -> None:
    name = await rig.start()

    async def deleted(_: object) -> None:
        await rig.store.inner.delete(name)

    rig.family.states[await rig.run_id(name)] = "RUNNING"
    rig.store.before_update(name, deleted)
    await rig.tracker.poller.poll(name)

    assert name not in rig.tracker.schedule
    with pytest.raises(NotFound):
        await rig.record(name)


async def test_a_databricks_outage_only_delays_the_poll(rig: Rig) -> None:
    name = await rig.start()
    rig.family.fail_next["observe"] = Unavailable("429", origin=Origin.DATABRICKS)
    before = await rig.record(name)
    await rig.tracker.poller.poll(name)
    assert await rig.record(name) == before


async def test_a_bug_in_one_poll_is_contained_and_retried(running: Rig) -> None:
    name = await running.start()
    running.family.fail_next["observe"] = RuntimeError("bug")  # type: ignore[assignment]
    running.family.states[await running.run_id(name)] = "SUCCESS"
    await running.clock.advance(30.0)
    assert (await running.record(name)).done


# --- leases -------------------------------------------------------------------------------


async def test_a_second_replica_takes_over_once_the_lease_expires() -> None:
    data = MemoryData()
    a = _rig(data=data)
    name = await a.start()
    a.family.states[await a.run_id(name)] = "RUNNING"

    b = _rig(data=data)
    b.tracker = Tracker(
        b.store,
        NO_DATABRICKS,
        {b.family.name: b.family},
        dataclasses.replace(OPTIONS, holder="replica-b"),
        clock=b.clock,
    )
    b.family.states = a.family.states
    task = asyncio.create_task(b.tracker.run())
    try:
        await b.clock.advance(20.0)
        assert b.family.observed == []  # replica-a's lease still holds
        await b.clock.advance(30.0)
        assert b.family.observed  # taken over
        assert (await b.record(name)).lease_holder == "replica-b"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_stop_releases_the_leases(running: Rig) -> None:
    name = await running.start()
    await running.tracker.stop()
    assert (await running.record(name)).lease_holder == ""


# --- batching -----------------------------------------------------------------------------


async def test_due_operations_of_a_listing_family_are_observed_with_one_list_call() -> None:
    family = FakeBatchFamily()
    rig = _rig(family)
    names = [await rig.start() for _ in range(4)]
    for name in names:
        run_id = await rig.run_id(name)
        family.states[run_id] = "RUNNING"
        family.listed.add(run_id)
    family.listed.discard(await rig.run_id(names[0]))  # not on the lists: read alone
    task = asyncio.create_task(rig.tracker.run())
    try:
        await rig.clock.advance(1.0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert family.list_calls == 1
    assert family.observed == [await rig.run_id(names[0])]
    for name in names:
        assert (await rig.record(name)).state == "RUNNING"


async def test_a_failed_listing_delays_the_batch(rig: Rig) -> None:
    family = FakeBatchFamily()
    rig = _rig(family)
    names = [await rig.start() for _ in range(3)]
    for name in names:
        family.listed.add(await rig.run_id(name))
    family.fail_next["observe_many"] = Unavailable("429", origin=Origin.DATABRICKS)
    records = [await rig.record(n) for n in names]

    plan = await rig.tracker.batcher.plan(
        NO_DATABRICKS, names, records, rig.tracker.poller.needs_attention
    )
    assert plan.later == names and plan.settle == [] and plan.individual == []


def test_the_payload_round_trips_and_ignores_core_fields() -> None:
    payload = json.loads(new_payload("run", {"job_id": 1}))
    assert payload == {"action": "run", "request": {"job_id": 1}}


async def test_operations_a_walk_finishes_together_are_written_in_one_batch() -> None:
    family = FakeBatchFamily()
    rig = _rig(family)
    names = [await rig.start() for _ in range(5)]
    for name in names:
        run_id = await rig.run_id(name)
        family.states[run_id] = "SUCCESS"
        family.listed.add(run_id)
    batches: list[int] = []
    update_many = rig.store.inner.update_many

    async def counted(records):  # type: ignore[no-untyped-def]
        batches.append(len(records))
        return await update_many(records)

    rig.store.inner.update_many = counted  # type: ignore[method-assign]
    task = asyncio.create_task(rig.tracker.run())
    try:
        await rig.clock.advance(1.0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert batches == [5]
    for name in names:
        assert (await rig.record(name)).done
        assert name not in rig.tracker.schedule


def _metadata(record: OperationRecord) -> jobs_pb2.RunMetadata:
    message = jobs_pb2.RunMetadata()
    assert record.operation.metadata.Unpack(message)
    return message


async def test_the_servers_own_trouble_does_not_fail_the_operation(rig: Rig) -> None:
    # E.g. Databricks not configured after a restart, or the server's token refused: the
    # work is not at fault, so the poll backs off and the operation stays as it was.
    name = await rig.start()
    before = await rig.record(name)
    rig.family.fail_next["observe"] = FailedPrecondition(
        "Databricks is not configured: no workspace host", reason="DATABRICKS_NOT_CONFIGURED"
    )
    await rig.tracker.poller.poll(name)
    assert await rig.record(name) == before
    assert name in rig.tracker.schedule


async def test_a_start_wakes_the_sleeping_loop_only_when_due_before_it_wakes(running: Rig) -> None:
    polled: list[tuple[str, float]] = []
    observe = running.family.observe
    began = running.clock.monotonic()

    async def timed(dbx, work, metadata):  # type: ignore[no-untyped-def]
        polled.append((work.ids.run_id, running.clock.monotonic() - began))
        return await observe(dbx, work, metadata)

    running.family.observe = timed  # type: ignore[method-assign]
    first = await running.start()
    await running.clock.settle()  # the loop sleeps until the first poll, 1 s from now
    second = await running.start()  # due at the same time: the loop need not wake for it
    assert not running.tracker._wake.is_set()

    await running.clock.advance(3.0)  # both polled at 1 s; next polls at 6 s
    third = await running.start()  # due at 4 s, before the loop wakes (6 s): it wakes
    assert running.tracker._wake.is_set()
    await running.clock.advance(1.5)

    ids = {await running.run_id(n): n for n in (first, second, third)}
    # The two due together are polled in either order.
    assert sorted((ids[run], round(t, 3)) for run, t in polled) == sorted(
        [(first, 1.0), (second, 1.0), (third, 4.0)]
    )
