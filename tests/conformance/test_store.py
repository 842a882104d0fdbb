"""OperationStore conformance: create, get, compare-and-set update, delete, limits, restarts.

Written against the port only (lro_server.core.store); every backend in conftest.BACKENDS
must pass it unchanged. Listing and filters live in test_store_list.py, leases in
test_store_claim.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable

import pytest
from google.protobuf import any_pb2, duration_pb2
from store_records import T0, name_for, new_record

from lro_server.core.errors import Aborted, AlreadyExists, FailedPrecondition, NotFound, Origin
from lro_server.core.record import MAX_CHECKPOINT_BYTES, MAX_OPERATION_BYTES, MAX_WORK_BYTES
from lro_server.core.store import OperationStore
from lro_server.testing.clock import FakeClock

Connect = Callable[[], Awaitable[OperationStore]]


# --- create and get ---------------------------------------------------------------------


async def test_create_then_get_round_trips_every_field(store: OperationStore) -> None:
    record = new_record(
        owner="alice@example.com",
        request_id="req-1",
        method="lro.databricks.v1.Jobs/SubmitRun",
        state="RUNNING",
        metadata=duration_pb2.Duration(seconds=5),
        family="jobs",
        deadline_us=T0 + 60_000_000,
        cancel_requested=True,
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        payload='{"run_id":123,"nested":{"list":[1,"two",null,true,2.5]},"ünï":"cødé"}',
        checkpoint=b"\x00\x01binary\xff",
        lease_holder="replica-a",
        lease_expire_us=T0 + 30_000_000,
    )

    created, was_created = await store.create(record)

    assert was_created
    assert created == dataclasses.replace(record, version=1, create_time_us=T0, update_time_us=T0)
    assert await store.get(record.name) == created


async def test_create_sets_version_and_times_itself(store: OperationStore) -> None:
    record = dataclasses.replace(new_record(), version=7, create_time_us=0, update_time_us=6)

    created, _ = await store.create(record)

    assert (created.version, created.create_time_us, created.update_time_us) == (1, T0, T0)
    assert await store.get(record.name) == created


async def test_create_keeps_the_creators_time(store: OperationStore) -> None:
    # The service stamps metadata and deadlines with its create time: the row must agree.
    record = dataclasses.replace(new_record(), version=7, create_time_us=5, update_time_us=6)

    created, _ = await store.create(record)

    assert (created.version, created.create_time_us, created.update_time_us) == (1, 5, 5)
    assert await store.get(record.name) == created


async def test_done_and_failed_records_round_trip(store: OperationStore) -> None:
    succeeded, _ = await store.create(new_record(done=True))
    failed, _ = await store.create(new_record(done=True, error_code=13))

    assert (await store.get(succeeded.name)).operation.HasField("response")
    stored = await store.get(failed.name)
    assert stored == failed
    assert stored.done and stored.error_code == 13


@pytest.mark.parametrize("checkpoint", [None, b""])
async def test_absent_and_empty_checkpoints_stay_distinct(
    store: OperationStore, checkpoint: bytes | None
) -> None:
    created, _ = await store.create(new_record(checkpoint=checkpoint))

    assert (await store.get(created.name)).checkpoint == checkpoint


async def test_get_of_a_missing_record_is_not_found(store: OperationStore) -> None:
    with pytest.raises(NotFound):
        await store.get(name_for(1))


async def test_a_duplicate_name_is_already_exists_and_changes_nothing(
    store: OperationStore,
) -> None:
    first, _ = await store.create(new_record(name=name_for(1), state="FIRST"))

    with pytest.raises(AlreadyExists) as raised:
        await store.create(new_record(name=name_for(1), state="SECOND"))

    assert raised.value.origin is Origin.STORE
    assert await store.get(name_for(1)) == first


async def test_a_repeated_request_id_returns_the_first_record(
    store: OperationStore, clock: FakeClock
) -> None:
    first, _ = await store.create(new_record(owner="alice", request_id="r1"))
    updated = await store.update(dataclasses.replace(first, state="RUNNING"))
    clock.step(1)

    again, created = await store.create(new_record(owner="alice", request_id="r1"))

    assert not created
    assert again == updated  # the record as it is now, not as it was created
    with pytest.raises(NotFound):
        await store.get(new_record().name)


async def test_request_ids_are_scoped_to_their_owner(store: OperationStore) -> None:
    alice, created_a = await store.create(new_record(owner="alice", request_id="r1"))
    bob, created_b = await store.create(new_record(owner="bob", request_id="r1"))

    assert created_a and created_b
    assert alice.name != bob.name
    assert await store.get(bob.name) == bob


async def test_records_without_request_id_never_collide(store: OperationStore) -> None:
    first, created_1 = await store.create(new_record(owner="alice"))
    second, created_2 = await store.create(new_record(owner="alice"))

    assert created_1 and created_2 and first.name != second.name


async def test_a_deleted_record_frees_its_request_id(store: OperationStore) -> None:
    first, _ = await store.create(new_record(owner="alice", request_id="r1"))
    await store.delete(first.name)

    second, created = await store.create(new_record(owner="alice", request_id="r1"))

    assert created and second.name != first.name


async def test_concurrent_creates_each_get_their_own_outcome(store: OperationStore) -> None:
    # Creates asked for together (a backend may write them in one transaction): a duplicate
    # name, a reused request id and an oversized record fail or dedupe alone.
    existing, _ = await store.create(new_record(name=name_for(1), state="EXISTING"))
    owner_first = new_record(owner="alice", request_id="r1", state="FIRST")
    fresh = [new_record(state=f"NEW-{n}") for n in range(3)]
    calls = [
        store.create(fresh[0]),
        store.create(new_record(name=name_for(1), state="DUPLICATE")),
        store.create(owner_first),
        store.create(new_record(metadata=_huge_metadata())),
        store.create(fresh[1]),
        store.create(new_record(owner="alice", request_id="r1", state="RETRIED")),
        store.create(fresh[2]),
    ]

    outcomes = await asyncio.gather(*calls, return_exceptions=True)

    assert isinstance(outcomes[1], AlreadyExists) and outcomes[1].origin is Origin.STORE
    assert isinstance(outcomes[3], FailedPrecondition)
    first, first_created = outcomes[2]  # type: ignore[misc]
    retried, retried_created = outcomes[5]  # type: ignore[misc]
    # One of the two with request id r1 is stored (the first asked, unless the backend
    # runs them in parallel); both answer with that one record.
    assert [first_created, retried_created].count(True) == 1
    assert retried == first and first.state in ("FIRST", "RETRIED")
    for record, outcome in zip(fresh, (outcomes[0], outcomes[4], outcomes[6]), strict=True):
        stored, created = outcome  # type: ignore[misc]
        assert created and stored.state == record.state
        assert await store.get(record.name) == stored
    assert await store.get(existing.name) == existing
    assert await store.get(first.name) == first


# --- compare-and-set update ---------------------------------------------------------------


async def test_update_stores_the_new_state_and_bumps_the_version(
    store: OperationStore, clock: FakeClock
) -> None:
    created, _ = await store.create(new_record(state="PENDING"))
    clock.step(2)
    change = dataclasses.replace(
        created,
        state="RUNNING",
        payload='{"run_id":7}',
        cancel_requested=True,
        checkpoint=b"step-2",
        operation=new_record(
            name=created.name, metadata=duration_pb2.Duration(seconds=1)
        ).operation,
    )

    updated = await store.update(change)

    assert updated == dataclasses.replace(change, version=2, update_time_us=T0 + 2_000_000)
    assert await store.get(created.name) == updated


async def test_each_update_increments_the_version_by_one(store: OperationStore) -> None:
    current, _ = await store.create(new_record())
    for expected in range(2, 7):
        current = await store.update(dataclasses.replace(current, state=f"S{expected}"))
        assert current.version == expected
    assert (await store.get(current.name)).version == 6


async def test_update_time_strictly_increases_when_the_clock_stands_still_or_steps_back(
    store: OperationStore, clock: FakeClock
) -> None:
    current, _ = await store.create(new_record())
    times = [current.update_time_us]
    for step in range(3):
        current = await store.update(dataclasses.replace(current, state=f"S{step}"))
        times.append(current.update_time_us)
    clock.set(clock.now().replace(year=2024))  # the clock steps back a year
    current = await store.update(dataclasses.replace(current, state="BACK"))
    times.append(current.update_time_us)

    assert times == sorted(set(times))
    assert current.create_time_us == T0


async def test_a_stale_version_is_aborted_and_changes_nothing(store: OperationStore) -> None:
    created, _ = await store.create(new_record())
    winner = await store.update(dataclasses.replace(created, state="WINNER"))

    with pytest.raises(Aborted):
        await store.update(dataclasses.replace(created, state="LOSER"))

    assert await store.get(created.name) == winner


async def test_a_version_from_the_future_is_aborted(store: OperationStore) -> None:
    created, _ = await store.create(new_record())

    with pytest.raises(Aborted):
        await store.update(dataclasses.replace(created, version=5, state="X"))


async def test_update_of_a_missing_record_is_not_found(store: OperationStore) -> None:
    with pytest.raises(NotFound):
        await store.update(dataclasses.replace(new_record(), version=1))


@pytest.mark.parametrize("stale", [False, True], ids=["current-version", "stale-version"])
async def test_a_done_record_never_changes_again(store: OperationStore, stale: bool) -> None:
    created, _ = await store.create(new_record())
    done = await store.update(
        dataclasses.replace(created, operation=new_record(name=created.name, done=True).operation)
    )
    base = created if stale else done

    with pytest.raises(FailedPrecondition):
        await store.update(dataclasses.replace(base, state="AFTER-DONE"))

    assert await store.get(created.name) == done


async def test_a_record_created_done_is_final(store: OperationStore) -> None:
    created, _ = await store.create(new_record(done=True, error_code=1))

    with pytest.raises(FailedPrecondition):
        await store.update(dataclasses.replace(created, state="X"))


async def test_update_keeps_owner_request_id_method_and_create_time(
    store: OperationStore,
) -> None:
    created, _ = await store.create(new_record(owner="alice", request_id="r1", method="m/A"))
    change = dataclasses.replace(
        created, owner="mallory", request_id="r2", method="m/B", create_time_us=1, state="S"
    )

    updated = await store.update(change)

    stored = await store.get(created.name)
    assert stored == updated
    assert (stored.owner, stored.request_id, stored.method, stored.create_time_us) == (
        "alice",
        "r1",
        "m/A",
        T0,
    )
    assert stored.state == "S"


# --- delete ---------------------------------------------------------------------------------


async def test_delete_forgets_one_record(store: OperationStore) -> None:
    doomed, _ = await store.create(new_record())
    kept, _ = await store.create(new_record())

    await store.delete(doomed.name)

    with pytest.raises(NotFound):
        await store.get(doomed.name)
    with pytest.raises(NotFound):
        await store.delete(doomed.name)
    assert await store.get(kept.name) == kept


async def test_delete_of_a_missing_record_is_not_found(store: OperationStore) -> None:
    with pytest.raises(NotFound):
        await store.delete(name_for(42))


# --- size limits ----------------------------------------------------------------------------


def _huge_metadata() -> any_pb2.Any:
    return any_pb2.Any(type_url="type.googleapis.com/x.Big", value=b"x" * MAX_OPERATION_BYTES)


async def test_an_oversized_operation_is_refused_before_anything_is_written(
    store: OperationStore,
) -> None:
    record = new_record(metadata=_huge_metadata())

    with pytest.raises(FailedPrecondition):
        await store.create(record)
    with pytest.raises(NotFound):
        await store.get(record.name)


async def test_an_oversized_checkpoint_or_work_is_refused(store: OperationStore) -> None:
    too_big = new_record(checkpoint=b"c" * (MAX_CHECKPOINT_BYTES + 1))
    too_much_work = new_record(payload=json.dumps({"blob": "w" * MAX_WORK_BYTES}))

    for record in (too_big, too_much_work):
        with pytest.raises(FailedPrecondition):
            await store.create(record)
        with pytest.raises(NotFound):
            await store.get(record.name)


async def test_an_oversized_update_changes_nothing(store: OperationStore) -> None:
    created, _ = await store.create(new_record())

    with pytest.raises(FailedPrecondition):
        await store.update(
            dataclasses.replace(created, checkpoint=b"c" * (MAX_CHECKPOINT_BYTES + 1))
        )
    big_op = new_record(name=created.name, metadata=_huge_metadata()).operation
    with pytest.raises(FailedPrecondition):
        await store.update(dataclasses.replace(created, operation=big_op))

    assert await store.get(created.name) == created


async def test_a_checkpoint_at_the_limit_is_stored(store: OperationStore) -> None:
    created, _ = await store.create(new_record(checkpoint=b"c" * MAX_CHECKPOINT_BYTES))

    assert (await store.get(created.name)).checkpoint == b"c" * MAX_CHECKPOINT_BYTES


# --- concurrency ----------------------------------------------------------------------------


async def test_concurrent_writers_of_one_version_have_exactly_one_winner(
    store: OperationStore,
) -> None:
    created, _ = await store.create(new_record())
    writers = 12
    all_have_read = asyncio.Barrier(writers)

    async def attempt(i: int) -> bool:
        current = await store.get(created.name)
        await all_have_read.wait()
        try:
            await store.update(dataclasses.replace(current, state=f"W{i}"))
        except Aborted:
            return False
        return True

    won = await asyncio.gather(*(attempt(i) for i in range(writers)))

    assert sum(won) == 1
    stored = await store.get(created.name)
    assert (stored.version, stored.state) == (2, f"W{won.index(True)}")


async def test_retrying_writers_lose_no_update(store: OperationStore) -> None:
    created, _ = await store.create(new_record(payload='{"count":0}'))
    writers, increments = 6, 5

    async def increment() -> None:
        for _ in range(increments):
            for _attempt in range(1000):
                current = await store.get(created.name)
                await asyncio.sleep(0)  # let the other writers read the same version
                try:
                    await store.update(
                        dataclasses.replace(current, payload=_incremented(current.payload))
                    )
                    break
                except Aborted:
                    continue
            else:
                pytest.fail("a writer never won")

    await asyncio.gather(*(increment() for _ in range(writers)))

    stored = await store.get(created.name)
    assert json.loads(stored.payload) == {"count": writers * increments}
    assert stored.version == 1 + writers * increments


async def test_compare_and_set_holds_between_two_stores(
    store: OperationStore, connect: Connect
) -> None:
    other = await connect()
    created, _ = await store.create(new_record())
    seen_by_other = await other.get(created.name)

    winner = await store.update(dataclasses.replace(created, state="FROM-A"))

    with pytest.raises(Aborted):
        await other.update(dataclasses.replace(seen_by_other, state="FROM-B"))
    assert await other.get(created.name) == winner


# --- reads see every committed write at once ------------------------------------------------
# (a backend that keeps records in memory must never serve one another write has replaced)


async def test_a_get_sees_the_same_stores_writes_at_once(store: OperationStore) -> None:
    created, _ = await store.create(new_record())
    assert await store.get(created.name) == created

    updated = await store.update(dataclasses.replace(created, state="RUNNING"))
    assert await store.get(created.name) == updated
    await store.delete(created.name)
    with pytest.raises(NotFound):
        await store.get(created.name)
    again, _ = await store.create(new_record(name=created.name, state="AGAIN"))
    assert await store.get(created.name) == again


async def test_a_get_sees_another_stores_update_and_delete_at_once(
    store: OperationStore, connect: Connect
) -> None:
    other = await connect()
    created, _ = await store.create(new_record())
    for _ in range(2):  # read twice: the second read may be served from memory
        assert await store.get(created.name) == created

    updated = await other.update(dataclasses.replace(created, state="FROM-OTHER"))
    assert await store.get(created.name) == updated

    await other.delete(created.name)
    with pytest.raises(NotFound):
        await store.get(created.name)
    again, _ = await other.create(new_record(name=created.name, state="AGAIN"))
    assert await store.get(created.name) == again


async def test_a_stores_own_write_does_not_hide_another_stores_earlier_write(
    store: OperationStore, connect: Connect
) -> None:
    other = await connect()
    first, _ = await store.create(new_record())
    second, _ = await store.create(new_record())
    assert await store.get(first.name) == first

    theirs = await other.update(dataclasses.replace(first, state="FROM-OTHER"))
    ours = await store.update(dataclasses.replace(second, state="FROM-STORE"))

    assert await store.get(first.name) == theirs
    assert await store.get(second.name) == ours
    assert await other.get(second.name) == ours


# --- persistence and health ---------------------------------------------------------------


async def test_a_reopened_store_sees_everything(store: OperationStore, connect: Connect) -> None:
    kept = [
        (await store.create(new_record(owner="alice", request_id="r1", checkpoint=b"cp")))[0],
        (await store.create(new_record(done=True, error_code=9)))[0],
    ]
    updated, _ = await store.create(new_record())
    kept.append(await store.update(dataclasses.replace(updated, state="RUNNING")))
    gone, _ = await store.create(new_record())
    await store.delete(gone.name)
    await store.close()

    reopened = await connect()

    for record in kept:
        assert await reopened.get(record.name) == record
    with pytest.raises(NotFound):
        await reopened.get(gone.name)
    again, created = await reopened.create(new_record(owner="alice", request_id="r1"))
    assert not created and again == kept[0]


async def test_close_is_idempotent(store: OperationStore) -> None:
    await store.close()
    await store.close()


async def test_ping_succeeds_on_a_healthy_store(store: OperationStore) -> None:
    await store.ping()


def _incremented(payload: str) -> str:
    return json.dumps({"count": json.loads(payload)["count"] + 1})


async def test_get_many_reads_records_in_order_with_none_for_missing_ones(
    store: OperationStore,
) -> None:
    first, _ = await store.create(new_record(state="A"))
    second, _ = await store.create(new_record(state="B"))
    missing = new_record().name

    assert await store.get_many([second.name, missing, first.name]) == [second, None, first]
    assert await store.get_many([]) == []
    assert await store.get_many([first.name, first.name]) == [first, first]
