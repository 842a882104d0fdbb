"""compare_and_set: re-applies a change over concurrent writes, declines, gives up."""

from __future__ import annotations

import dataclasses

import pytest
from engine_fakes import MeddlingStore, bump, child_record, struct

from lro_server.core import lifecycle
from lro_server.core.cas import compare_and_set
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
