"""OperationsService on the in-memory store, a fake runner and fake time.

Starts (AIP-155, forgetting refused starts), visibility, cancel (also against a
concurrent writer), delete, listing pages, and WaitOperation's deadline, wake-ups and
re-read back-off — each in microseconds, without a server.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from engine_fakes import FakeRunner, MeddlingStore, bump, struct

from lro_server.core import lifecycle
from lro_server.core.clock import to_micros
from lro_server.core.errors import (
    Aborted,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from lro_server.core.notify import Notifier
from lro_server.core.operations import OperationsService, ServiceLimits
from lro_server.core.principal import Principal
from lro_server.testing import MemoryData, MemoryStore
from lro_server.testing.clock import FakeClock

ALICE = Principal(subject="alice")
BOB = Principal(subject="bob")
ADMIN = Principal(subject="root", admin=True)
METHOD = "test.v1.Things/Make"


@dataclasses.dataclass
class Service:
    service: OperationsService
    store: MeddlingStore
    runner: FakeRunner
    clock: FakeClock


@pytest.fixture
def svc() -> Service:
    clock = FakeClock()
    store = MeddlingStore(MemoryStore(clock))
    runner = FakeRunner()
    limits = ServiceLimits(reread_seconds=1.0, max_reread_seconds=4.0, max_wait_seconds=60.0)
    notifier = Notifier(max_waiters=3, clock=clock)
    service = OperationsService(store, runner, notifier=notifier, clock=clock, limits=limits)
    return Service(service, store, runner, clock)


async def _start(s: Service, caller: Principal = ALICE, **kwargs: object) -> str:
    args: dict[str, object] = {"family": "fake", "payload": '{"n":1}', "timeout_seconds": 60.0}
    args.update(kwargs)
    operation = await s.service.start(caller=caller, method=METHOD, **args)  # type: ignore[arg-type]
    return str(operation.name)


async def _finish(s: Service, name: str) -> None:
    record = await s.store.get(name)
    await s.store.update(lifecycle.succeed(record, struct(done=True)))


# --- start ------------------------------------------------------------------------------


async def test_start_stores_the_typed_record_and_starts_it(svc: Service) -> None:
    name = await _start(svc, timeout_seconds=90.0)

    record = await svc.store.get(name)
    created = to_micros(svc.clock.now())
    assert (record.owner, record.method, record.family) == ("alice", METHOD, "fake")
    assert record.payload == '{"n":1}'
    assert record.create_time_us == created
    assert record.deadline_us == created + 90_000_000
    assert not record.cancel_requested and record.traceparent == ""
    assert svc.runner.prepared == svc.runner.started == [name]
    assert struct(prepared=True) == _metadata(record.operation)


async def test_no_timeout_means_no_deadline(svc: Service) -> None:
    record = await svc.store.get(await _start(svc, timeout_seconds=0.0))
    assert record.deadline_us == 0 and record.timeout_seconds == 0.0


async def test_the_same_request_id_returns_the_first_operation_and_starts_nothing(
    svc: Service,
) -> None:
    first = await _start(svc, request_id="r-1")
    again = await _start(svc, request_id="r-1")

    assert again == first
    assert svc.runner.started == [first]
    # Another owner's request id is another namespace.
    assert await _start(svc, BOB, request_id="r-1") != first


async def test_a_request_id_used_for_another_method_is_refused(svc: Service) -> None:
    await _start(svc, request_id="r-1")
    with pytest.raises(InvalidArgument) as refused:
        await svc.service.start(
            caller=ALICE,
            method="test.v1.Other/Do",
            family="fake",
            payload="{}",
            timeout_seconds=1,
            request_id="r-1",
        )
    assert refused.value.reason == "REQUEST_ID_REUSED"


async def test_a_start_the_runner_refuses_leaves_no_operation(svc: Service) -> None:
    svc.runner.fail_start = InvalidArgument("no such job")
    with pytest.raises(InvalidArgument, match="no such job"):
        await _start(svc)
    (name,) = svc.runner.started
    with pytest.raises(NotFound):
        await svc.store.get(name)


async def test_bad_request_ids_are_refused_before_anything_is_stored(svc: Service) -> None:
    for bad in ("x" * 129, "tab\there"):
        with pytest.raises(InvalidArgument):
            await _start(svc, request_id=bad)
    assert svc.runner.prepared == []


# --- visibility, delete, list -------------------------------------------------------------


async def test_another_owners_operation_looks_missing(svc: Service) -> None:
    name = await _start(svc)
    with pytest.raises(NotFound) as hidden:
        await svc.service.get(name, BOB)
    with pytest.raises(NotFound) as missing:
        await svc.service.get("operations/00000000-0000-4000-8000-000000000000", BOB)
    assert type(hidden.value) is type(missing.value)
    assert (await svc.service.get(name, ADMIN)).name == name


async def test_get_cached_answers_as_get_does_or_not_at_all(svc: Service) -> None:
    name = await _start(svc)
    assert svc.service.get_cached(name, ALICE) == await svc.service.get(name, ALICE)
    assert svc.service.get_cached(name, ADMIN) == await svc.service.get(name, ADMIN)
    with pytest.raises(NotFound) as hidden:
        svc.service.get_cached(name, BOB)
    with pytest.raises(NotFound) as refused:
        await svc.service.get(name, BOB)
    assert hidden.value.args == refused.value.args
    await _finish(svc, name)
    assert svc.service.get_cached(name, ALICE) == await svc.service.get(name, ALICE)
    assert svc.service.get_cached(name, ALICE).done  # type: ignore[union-attr]
    await svc.service.delete(name, ALICE)
    assert svc.service.get_cached(name, ALICE) is None  # get says NotFound
    # Names the store does not hold, valid or not, are left to get, which checks them.
    assert svc.service.get_cached("not-a-name", ALICE) is None
    with pytest.raises(InvalidArgument):
        await svc.service.get("not-a-name", ALICE)


async def test_a_waiter_may_read_but_not_change(svc: Service) -> None:
    name = await _start(svc)
    waiter = Principal(subject="wf", waiter=True)
    assert (await svc.service.get(name, waiter)).name == name
    with pytest.raises(PermissionDenied):
        await svc.service.cancel(name, waiter)
    with pytest.raises(PermissionDenied):
        await svc.service.delete(name, waiter)


async def test_delete_forgets_without_cancelling(svc: Service) -> None:
    name = await _start(svc)
    await svc.service.delete(name, ALICE)
    with pytest.raises(NotFound):
        await svc.service.get(name, ALICE)
    assert svc.runner.cancels == []


async def test_pages_walk_every_operation_newest_first(svc: Service) -> None:
    names = []
    for _ in range(5):
        names.append(await _start(svc))
        svc.clock.step(1)
    await _start(svc, BOB)

    seen: list[str] = []
    token = ""
    while True:
        page, token = await svc.service.list("operations", "", 2, token, ALICE)
        seen.extend(op.name for op in page)
        if not token:
            break
    assert seen == names[::-1]
    with pytest.raises(InvalidArgument):
        await svc.service.list("operations", "done = true", 2, _first_token(svc), ALICE)


def _first_token(svc: Service) -> str:
    from lro_server.core import pagetoken

    return pagetoken.encode(
        svc.service.limits.page_token_key,
        filter_canonical="",
        scope="owner:alice",
        last_create_time_us=1,
        last_name="operations/x",
    )


# --- cancel -------------------------------------------------------------------------------


async def test_cancel_records_the_request_once_and_asks_the_runner(svc: Service) -> None:
    name = await _start(svc)
    await svc.service.cancel(name, ALICE)
    await svc.service.cancel(name, ALICE)

    record = await svc.store.get(name)
    assert record.cancel_requested and record.version == 2  # written once
    assert svc.runner.cancels == [name, name]  # asked each time (a poke is idempotent)


async def test_cancelling_a_done_operation_changes_nothing(svc: Service) -> None:
    name = await _start(svc)
    await _finish(svc, name)
    before = await svc.store.get(name)
    await svc.service.cancel(name, ALICE)
    assert await svc.store.get(name) == before
    assert svc.runner.cancels == []


async def test_cancel_keeps_a_concurrent_write(svc: Service) -> None:
    name = await _start(svc)

    async def tracker_writes(_: object) -> None:
        await bump(svc.store.inner, name, state="RUNNING")

    svc.store.before_update(name, tracker_writes)
    await svc.service.cancel(name, ALICE)

    record = await svc.store.get(name)
    assert record.cancel_requested and record.state == "RUNNING"


async def test_cancel_gives_up_with_aborted_when_it_always_loses(svc: Service) -> None:
    name = await _start(svc)

    async def always(_: object) -> None:
        await bump(svc.store.inner, name, state="BUSY")

    svc.store.before_update(name, always, times=1000)
    with pytest.raises(Aborted):
        await svc.service.cancel(name, ALICE)
    assert not (await svc.store.get(name)).cancel_requested


async def test_cancel_that_loses_to_the_finishing_write_is_a_no_op(svc: Service) -> None:
    name = await _start(svc)

    async def finish(_: object) -> None:
        record = await svc.store.inner.get(name)
        await svc.store.inner.update(lifecycle.succeed(record, struct(done=True)))

    svc.store.before_update(name, finish)
    await svc.service.cancel(name, ALICE)
    record = await svc.store.get(name)
    assert record.done and not record.cancel_requested
    assert svc.runner.cancels == []


# --- wait ---------------------------------------------------------------------------------


async def test_wait_returns_at_once_when_done_or_without_budget(svc: Service) -> None:
    name = await _start(svc)
    assert not (await svc.service.wait(name, 0.0, ALICE)).done
    await _finish(svc, name)
    assert (await svc.service.wait(name, 30.0, ALICE)).done


async def test_wait_returns_the_latest_state_at_its_timeout(svc: Service) -> None:
    name = await _start(svc)
    waiting = asyncio.create_task(svc.service.wait(name, 10.0, ALICE))
    await svc.clock.advance(9.9)
    assert not waiting.done()
    await svc.clock.advance(0.1)
    operation = await waiting
    assert not operation.done


async def test_a_notified_completion_wakes_the_wait_without_a_store_read(svc: Service) -> None:
    name = await _start(svc)
    waiting = asyncio.create_task(svc.service.wait(name, 30.0, ALICE))
    await svc.clock.settle()
    record = await svc.store.get(name)
    finished = await svc.store.update(lifecycle.succeed(record, struct(done=True)))
    svc.service.notifier.notify(name, finished)
    operation = await asyncio.wait_for(waiting, 1)  # a fake-time test never waits for real
    assert operation.done


async def test_a_completion_by_another_replica_is_seen_by_the_backing_off_re_read(
    svc: Service,
) -> None:
    name = await _start(svc)
    reads: list[float] = []
    inner_get = svc.store.get

    async def counted_get(n: str) -> object:
        reads.append(svc.clock.monotonic())
        return await inner_get(n)

    svc.store.get = counted_get  # type: ignore[method-assign]
    start = svc.clock.monotonic()
    waiting = asyncio.create_task(svc.service.wait(name, 60.0, ALICE))
    await svc.clock.advance(15.0)
    # Re-reads every 1, 2, 4, 4, 4 s while nothing changes (max_reread_seconds = 4).
    assert [round(t - start, 3) for t in reads] == [0.0, 1.0, 3.0, 7.0, 11.0, 15.0]
    svc.store.get = inner_get  # type: ignore[method-assign]
    await _finish(svc, name)  # written elsewhere: no notification
    await svc.clock.advance(4.0)
    assert (await waiting).done


async def test_draining_answers_held_waits_at_once(svc: Service) -> None:
    name = await _start(svc)
    waiting = asyncio.create_task(svc.service.wait(name, 60.0, ALICE))
    await svc.clock.settle()
    svc.service.notifier.drain()
    assert not (await asyncio.wait_for(waiting, 1)).done


async def test_waiters_beyond_the_limit_are_refused(svc: Service) -> None:
    name = await _start(svc)
    held = [asyncio.create_task(svc.service.wait(name, 60.0, ALICE)) for _ in range(3)]
    await svc.clock.settle()
    with pytest.raises(ResourceExhausted):
        await svc.service.wait(name, 60.0, ALICE)
    await svc.clock.advance(60.0)
    await asyncio.gather(*held)
    assert svc.service.notifier.waiters == 0


async def test_an_unreachable_store_is_unavailable_not_internal() -> None:
    clock = FakeClock()
    data = MemoryData()
    store = MemoryStore(clock, data=data)
    service = OperationsService(store, FakeRunner(), clock=clock)
    await store.close()
    with pytest.raises(Unavailable):
        await service.get("operations/00000000-0000-4000-8000-000000000000", ALICE)


def _metadata(operation: object) -> object:
    message = struct()
    operation.metadata.Unpack(message)  # type: ignore[attr-defined]
    return message


async def test_a_request_id_reused_for_a_different_request_is_refused(svc: Service) -> None:
    first = await _start(svc, request_id="r-1", payload='{"job_id":1}')
    with pytest.raises(InvalidArgument) as refused:
        await _start(svc, request_id="r-1", payload='{"job_id":2}')
    assert refused.value.reason == "REQUEST_ID_REUSED"
    assert refused.value.metadata == {"field": "request_id", "operation": first}
    assert "different request" in refused.value.message
    # The same request with another timeout is the same request (a retried chain step
    # asks for the time its chain has left).
    assert await _start(svc, request_id="r-1", payload='{"job_id":1}', timeout_seconds=5) == first
    assert svc.runner.started == [first]


async def test_the_same_request_serialized_in_another_key_order_is_the_same_request(
    svc: Service,
) -> None:
    # A Struct's fields (e.g. a submitted task) come out in a per-process order.
    first = await _start(svc, request_id="r-1", payload='{"a":1,"t":{"x":1,"y":2}}')
    again = await _start(svc, request_id="r-1", payload='{"t":{"y":2,"x":1},"a":1}')
    assert again == first
