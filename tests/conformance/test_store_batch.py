"""OperationStore.update_many on every backend: one transaction, compare-and-set per row."""

from __future__ import annotations

import dataclasses

import pytest
from store_records import T0, new_record

from lro_server.core.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OperationDone,
)
from lro_server.core.record import MAX_CHECKPOINT_BYTES
from lro_server.core.store import OperationStore
from lro_server.testing.clock import FakeClock


async def test_every_record_is_written_as_update_would(
    store: OperationStore, clock: FakeClock
) -> None:
    created = [(await store.create(new_record(state="PENDING")))[0] for _ in range(5)]
    clock.step(3)
    changes = [dataclasses.replace(r, state=f"RUNNING-{i}") for i, r in enumerate(created)]

    results = await store.update_many(changes)

    for change, result in zip(changes, results, strict=True):
        assert result == dataclasses.replace(change, version=2, update_time_us=T0 + 3_000_000)
        assert await store.get(change.name) == result


async def test_records_can_finish_together(store: OperationStore) -> None:
    created = [(await store.create(new_record()))[0] for _ in range(3)]
    finished = [
        dataclasses.replace(
            r, operation=new_record(name=r.name, done=True, error_code=i or None).operation
        )
        for i, r in enumerate(created)
    ]

    results = await store.update_many(finished)

    assert all(not isinstance(r, Exception) and r.done for r in results)
    for record in finished:
        stored = await store.get(record.name)
        assert stored.done and stored.operation == record.operation
        with pytest.raises(FailedPrecondition):  # final, as after update
            await store.update(dataclasses.replace(stored, state="AFTER"))


async def test_a_row_that_fails_is_answered_in_its_place_and_the_others_are_written(
    store: OperationStore,
) -> None:
    stale, _ = await store.create(new_record())
    winner = await store.update(dataclasses.replace(stale, state="WINNER"))
    done, _ = await store.create(new_record(done=True, error_code=1))
    big, _ = await store.create(new_record())
    fine = [(await store.create(new_record()))[0] for _ in range(2)]
    missing = dataclasses.replace(new_record(), version=1)
    batch = [
        dataclasses.replace(fine[0], state="A"),
        dataclasses.replace(stale, state="LOSER"),
        missing,
        dataclasses.replace(done, state="AFTER-DONE"),
        dataclasses.replace(big, checkpoint=b"c" * (MAX_CHECKPOINT_BYTES + 1)),
        dataclasses.replace(fine[1], state="B"),
    ]

    results = await store.update_many(batch)

    assert [type(r) for r in results[1:5]] == [Aborted, NotFound, OperationDone, FailedPrecondition]
    assert (await store.get(fine[0].name)).state == "A"
    assert (await store.get(fine[1].name)).state == "B"
    assert results[0] == await store.get(fine[0].name)
    assert results[5] == await store.get(fine[1].name)
    assert await store.get(stale.name) == winner
    assert await store.get(big.name) == big
    with pytest.raises(NotFound):
        await store.get(missing.name)


async def test_update_many_keeps_owner_request_id_method_create_time_and_lease(
    store: OperationStore,
) -> None:
    created, _ = await store.create(
        new_record(owner="alice", request_id="r1", method="m/A", lease_holder="r-a")
    )
    change = dataclasses.replace(
        created, owner="mallory", request_id="r2", method="m/B", create_time_us=1,
        lease_holder="r-b", state="S",
    )  # fmt: skip

    (result,) = await store.update_many([change])

    stored = await store.get(created.name)
    assert result == stored
    assert (stored.owner, stored.request_id, stored.method, stored.create_time_us) == (
        "alice",
        "r1",
        "m/A",
        T0,
    )
    assert (stored.lease_holder, stored.state) == ("r-a", "S")


async def test_a_name_twice_in_one_batch_is_refused_and_nothing_is_written(
    store: OperationStore,
) -> None:
    created, _ = await store.create(new_record())

    with pytest.raises(InvalidArgument):
        await store.update_many(
            [dataclasses.replace(created, state="X"), dataclasses.replace(created, state="Y")]
        )

    assert await store.get(created.name) == created


async def test_an_empty_batch_writes_nothing(store: OperationStore) -> None:
    assert await store.update_many([]) == []
