"""The Resumer's rules on the in-memory store, a scripted method, a recording waiter and
fake time: who may resume, stale and duplicate resumes, children still running, timeouts,
waiter failures, concurrent resumes and a CancelOperation racing a commit."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from engine_fakes import FakeWaiter, MeddlingStore, ScriptedMethod, bump, child_record, struct

from lro_server.core import lifecycle
from lro_server.core.errors import (
    FailedPrecondition,
    NotFound,
    OperationDone,
    PermissionDenied,
    Unavailable,
)
from lro_server.core.operations import OperationsService
from lro_server.core.principal import INTERNAL, Principal
from lro_server.core.record import OperationRecord
from lro_server.resume.checkpoint import Checkpoint
from lro_server.resume.engine import MAX_WAITER_RETRIES, Resumer
from lro_server.resume.method import Advance, Resumption, WaitOutcome
from lro_server.testing import MemoryStore
from lro_server.testing.clock import FakeClock

ALICE = Principal(subject="alice")
CHILD_A = "operations/00000000-0000-4000-8000-00000000000a"
CHILD_B = "operations/00000000-0000-4000-8000-00000000000b"


@dataclasses.dataclass
class Rig:
    clock: FakeClock
    store: MeddlingStore
    method: ScriptedMethod
    waiter: FakeWaiter
    resumer: Resumer
    service: OperationsService
    cancelled: list[str]

    async def start(self, timeout: float = 3600.0) -> str:
        operation = await self.service.start(
            caller=ALICE,
            method=self.method.method,
            family="scripted",
            payload="{}",
            timeout_seconds=timeout,
        )
        return str(operation.name)

    async def record(self, name: str) -> OperationRecord:
        return await self.store.get(name)

    async def resume(self, name: str, **kwargs: object) -> object:
        return await self.resumer.resume(name, INTERNAL, method=self.method.method, **kwargs)  # type: ignore[arg-type]

    async def finish_child(self, name: str) -> None:
        record = await self.store.get(name)
        await self.store.update(lifecycle.succeed(record, struct(child=name)))


@pytest.fixture
async def rig() -> Rig:
    clock = FakeClock()
    store = MeddlingStore(MemoryStore(clock))
    method = ScriptedMethod(first_children=(CHILD_A, CHILD_B))
    for child in method.first_children:
        await store.create(child_record(child))
    resumer = Resumer(store, [method], clock=clock)
    waiter = FakeWaiter()
    cancelled: list[str] = []

    async def cancel_child(name: str) -> None:
        cancelled.append(name)

    resumer.bind(waiter, cancel_child)
    service = OperationsService(store, resumer, clock=clock)
    return Rig(clock, store, method, waiter, resumer, service, cancelled)


async def test_the_first_move_is_committed_and_its_wait_handed_off(rig: Rig) -> None:
    name = await rig.start()

    checkpoint = Checkpoint.of(await rig.record(name))
    assert checkpoint.seq == 1 and checkpoint.wait is not None
    assert checkpoint.wait.children == (CHILD_A, CHILD_B)
    (ticket,) = rig.waiter.handed
    assert (ticket.parent, ticket.wait_id, ticket.children) == (name, 1, (CHILD_A, CHILD_B))
    # The waiter's handle is recorded for a restart.
    assert Checkpoint.of(await rig.record(name)).wait.handle == "executions/1"  # type: ignore[union-attr]


async def test_only_a_waiter_may_resume(rig: Rig) -> None:
    name = await rig.start()
    before = await rig.record(name)
    with pytest.raises(PermissionDenied):
        await rig.resumer.resume(name, ALICE, method=rig.method.method)
    assert await rig.record(name) == before


async def test_resuming_what_is_missing_foreign_or_not_waiting_is_refused(rig: Rig) -> None:
    with pytest.raises(NotFound):
        await rig.resume("operations/00000000-0000-4000-8000-0000000000ff")
    with pytest.raises(FailedPrecondition, match="not an operation of"):
        await rig.resume(CHILD_A)
    name = await rig.start()
    with pytest.raises(FailedPrecondition, match="never had wait 7"):
        await rig.resume(name, wait_id=7)


async def test_children_still_running_make_the_resume_a_no_op(rig: Rig) -> None:
    name = await rig.start()
    await rig.finish_child(CHILD_A)
    before = await rig.record(name)

    await rig.resume(name, wait_id=1)

    assert await rig.record(name) == before
    assert rig.method.resumptions == []


async def test_all_children_done_resumes_once_and_later_resumes_are_no_ops(rig: Rig) -> None:
    name = await rig.start()
    await rig.finish_child(CHILD_A)
    await rig.finish_child(CHILD_B)

    await rig.resume(name, wait_id=1)
    await rig.resume(name, wait_id=1)  # a duplicate of the same wait

    record = await rig.record(name)
    assert record.done and record.operation.HasField("response")
    (resumption,) = rig.method.resumptions
    assert set(resumption.children) == {CHILD_A, CHILD_B}
    assert all(c is not None and c.done for c in resumption.children.values())
    assert rig.waiter.forgotten == [name]
    with pytest.raises(OperationDone):
        await rig.resume(name)


async def test_the_parents_deadline_resumes_with_timed_out(rig: Rig) -> None:
    name = await rig.start(timeout=60.0)
    await rig.clock.advance(61.0)

    await rig.resume(name, wait_id=1)

    (resumption,) = rig.method.resumptions
    assert resumption.timed_out and not resumption.waiter_failed


async def test_a_waiter_that_gives_up_is_replaced_a_few_times_then_the_method_decides(
    rig: Rig,
) -> None:
    name = await rig.start()
    for attempt in range(MAX_WAITER_RETRIES):
        wait_id = Checkpoint.of(await rig.record(name)).wait.id  # type: ignore[union-attr]
        await rig.resume(name, wait_id=wait_id, outcome=WaitOutcome.ERROR)
        assert len(rig.waiter.handed) == 2 + attempt  # handed off again
        assert rig.method.resumptions == []

    wait_id = Checkpoint.of(await rig.record(name)).wait.id  # type: ignore[union-attr]
    await rig.resume(name, wait_id=wait_id, outcome=WaitOutcome.ERROR)

    (resumption,) = rig.method.resumptions
    assert resumption.waiter_failed


async def test_a_failed_hand_off_is_retried_after_a_pause_as_a_waiter_error(rig: Rig) -> None:
    rig.waiter.fail_next = Unavailable("executions API down")
    name = await rig.start()
    assert rig.waiter.handed == []

    await rig.clock.advance(1.0)  # the pause before the retry (2 ** retries seconds)

    checkpoint = Checkpoint.of(await rig.record(name))
    assert checkpoint.wait is not None and checkpoint.wait.retries == 1
    assert [t.wait_id for t in rig.waiter.handed] == [checkpoint.wait.id]


async def test_concurrent_resumes_of_one_wait_commit_one_decision(rig: Rig) -> None:
    name = await rig.start()
    await rig.finish_child(CHILD_A)
    await rig.finish_child(CHILD_B)
    gate = asyncio.Event()
    decisions = 0

    async def slow_decision(resumption: Resumption) -> Advance:
        nonlocal decisions
        decisions += 1
        await gate.wait()  # both resumes decide on the same checkpoint
        return Advance(
            state={"step": 2, "by": decisions},
            metadata=struct(step=2),
            live_state="SUCCEEDED",
            response=struct(by=decisions),
        )

    rig.method.decide = slow_decision
    first = asyncio.create_task(rig.resume(name, wait_id=1))
    second = asyncio.create_task(rig.resume(name, wait_id=1))
    await rig.clock.settle()
    gate.set()
    await asyncio.gather(first, second)

    record = await rig.record(name)
    assert decisions == 2 and record.done
    assert Checkpoint.of(record).seq == 2  # one commit, not two
    assert rig.waiter.forgotten == [name]  # the loser did not act on its decision


async def test_a_cancel_during_the_commit_keeps_the_decision_and_cancels_its_children(
    rig: Rig,
) -> None:
    name = await rig.start()
    await rig.finish_child(CHILD_A)
    await rig.finish_child(CHILD_B)
    next_child = "operations/00000000-0000-4000-8000-00000000000c"

    async def next_step(resumption: Resumption) -> Advance:
        return Advance(
            state={"step": 2}, metadata=struct(step=2), live_state="RUNNING", wait_on=(next_child,)
        )

    async def cancel_arrives(_: object) -> None:
        await bump(rig.store.inner, name, cancel_requested=True)

    rig.method.decide = next_step
    rig.store.before_update(name, cancel_arrives)
    await rig.resume(name, wait_id=1)

    record = await rig.record(name)
    checkpoint = Checkpoint.of(record)
    assert record.cancel_requested and checkpoint.wait is not None
    assert checkpoint.wait.children == (next_child,)
    assert rig.cancelled == [next_child]  # the child it had just started is cancelled


async def test_cancel_operation_cancels_the_awaited_children(rig: Rig) -> None:
    name = await rig.start()
    await rig.service.cancel(name, ALICE)
    assert rig.cancelled == [CHILD_A, CHILD_B]
