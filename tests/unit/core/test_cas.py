"""compare_and_set: re-applies a change over concurrent writes, declines, gives up."""

from __future__ import annotations

import dataclasses

import pytest
from engine_fakes import MeddlingStore, bump, child_record, struct

from lro_server.core import lifecycle
from lro_server.core.cas import compare_and_set, compare_and_set_many
from lro_server.core.errors import Aborted, NotFound, OperationDone
from lro_server.core.record import OperationRecord
from lro_server.testing import MemoryStore
from lro_server.testing.clock import FakeClock

NAME = "operations/00000000-0000-4000-8000-00000000000a"


@pytest.fixture
async def store() -> MeddlingStore:
    store = MeddlingStore(MemoryStore(FakeClock()))
    await store.create(child_record(NAME))
    return store


def _running(record: OperationRecord) -> OperationRecord:
    return dataclasses.replace(record, state="RUNNING")


async def test_a_lost_race_is_decided_again_on_the_winners_record(store: MeddlingStore) -> None:
    async def other(_: object) -> None:
        await bump(store.inner, NAME, cancel_requested=True)

    store.before_update(NAME, other, times=2)
    seen: list[int] = []

    def change(record: OperationRecord) -> OperationRecord:
        seen.append(record.version)
        return _running(record)

    stored = await compare_and_set(store, NAME, change)
    assert seen == [1, 2, 3]
    assert (stored.state, stored.cancel_requested, stored.version) == ("RUNNING", True, 4)


async def test_declining_writes_nothing(store: MeddlingStore) -> None:
    stored = await compare_and_set(store, NAME, lambda record: None)
    assert stored.version == 1 and store.updates == 0


async def test_a_record_finished_meanwhile_is_shown_to_the_change(store: MeddlingStore) -> None:
    async def finish(_: object) -> None:
        record = await store.inner.get(NAME)
        await store.inner.update(lifecycle.succeed(record, struct()))

    store.before_update(NAME, finish)
    stored = await compare_and_set(store, NAME, lambda r: None if r.done else _running(r))
    assert stored.done and stored.state == ""

    with pytest.raises(OperationDone):
        await compare_and_set(store, NAME, _running)


async def test_it_gives_up_with_aborted(store: MeddlingStore) -> None:
    async def other(_: object) -> None:
        await bump(store.inner, NAME, state="OTHER")

    store.before_update(NAME, other, times=100)
    with pytest.raises(Aborted):
        await compare_and_set(store, NAME, _running, attempts=5)
    assert store.updates == 5


async def test_a_missing_record_is_not_found(store: MeddlingStore) -> None:
    with pytest.raises(NotFound):
        await compare_and_set(store, "operations/00000000-0000-4000-8000-0000000000ff", _running)


# --- compare_and_set_many -------------------------------------------------------------------


def _names(count: int) -> list[str]:
    return [f"operations/00000000-0000-4000-8000-{n:012d}" for n in range(100, 100 + count)]


async def _created(store: MeddlingStore, count: int) -> list[OperationRecord]:
    return [(await store.create(child_record(name)))[0] for name in _names(count)]


async def test_many_changes_are_written_in_one_batch(store: MeddlingStore) -> None:
    records = await _created(store, 4)
    batches: list[int] = []
    update_many = store.inner.update_many

    async def counted(batch):  # type: ignore[no-untyped-def]
        batches.append(len(batch))
        return await update_many(batch)

    store.inner.update_many = counted  # type: ignore[method-assign]
    results = await compare_and_set_many(store, [(r, _running) for r in records])

    assert batches == [4]
    assert all(isinstance(r, OperationRecord) and r.state == "RUNNING" for r in results)
    assert [r.name for r in results] == [r.name for r in records]  # type: ignore[union-attr]


async def test_a_row_that_lost_its_race_is_decided_again_alone(store: MeddlingStore) -> None:
    records = await _created(store, 3)
    loser = records[1].name

    async def cancel_arrives(_: object) -> None:
        await bump(store.inner, loser, cancel_requested=True)

    store.before_update(loser, cancel_arrives)
    results = await compare_and_set_many(store, [(r, _running) for r in records])

    again = await store.get(loser)
    assert again.cancel_requested and again.state == "RUNNING"  # neither write lost
    assert results[1] == again
    assert all(isinstance(r, OperationRecord) and r.state == "RUNNING" for r in results)


async def test_declined_finished_and_missing_rows_are_answered_in_place(
    store: MeddlingStore,
) -> None:
    first, declined, gone = await _created(store, 3)
    finished = await store.update(lifecycle.succeed(first, struct(ok=True)))
    await store.inner.delete(gone.name)

    results = await compare_and_set_many(
        store,
        [(declined, lambda r: None), (first, _running), (gone, _running)],
    )

    assert results[0] == declined
    assert isinstance(results[1], OperationDone) and await store.get(first.name) == finished
    assert isinstance(results[2], NotFound)
