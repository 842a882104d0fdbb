"""OperationStore conformance: journal appends that leave the record as it is.

``append`` adds events to an operation's journal while the stored record is still at the
version the writer knows and not done, without writing the record (a durable method's
step). Every condition ``update`` checks holds for it, and the record's version and update
time stay. Every backend in conftest.BACKENDS must pass unchanged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable

import pytest
from store_records import new_record

from lro_server.core.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OperationDone,
)
from lro_server.core.record import OperationRecord
from lro_server.core.store import MAX_JOURNAL_EVENT_BYTES, JournalEvent, OperationStore

Connect = Callable[[], Awaitable[OperationStore]]


def _events(*seqs: int) -> list[JournalEvent]:
    return [JournalEvent(seq, json.dumps({"kind": "STEP_DONE", "pos": seq})) for seq in seqs]


async def _created(store: OperationStore) -> OperationRecord:
    record, _ = await store.create(new_record())
    return record


async def test_an_append_adds_events_and_leaves_the_record(store: OperationStore) -> None:
    record = await _created(store)

    await store.append(record, _events(1))
    await store.append(record, _events(2, 3))

    assert await store.journal(record.name) == _events(1, 2, 3)
    stored = await store.get(record.name)
    assert (stored.version, stored.update_time_us) == (record.version, record.update_time_us)
    assert stored.operation == record.operation


async def test_an_update_continues_the_journal_after_appends(store: OperationStore) -> None:
    record = await _created(store)
    await store.append(record, _events(1))

    # The append did not move the version: the writer's next update still matches.
    updated = await store.update(dataclasses.replace(record, state="NEXT"), journal=_events(2))

    assert updated.version == record.version + 1
    assert await store.journal(record.name) == _events(1, 2)


async def test_an_append_at_a_stale_version_appends_nothing(store: OperationStore) -> None:
    record = await _created(store)
    await store.update(dataclasses.replace(record, state="MOVED"))

    with pytest.raises(Aborted):
        await store.append(record, _events(1))
    with pytest.raises(Aborted):
        await store.append(record, _events(1, 2))

    assert await store.journal(record.name) == []


async def test_a_done_operation_takes_no_append(store: OperationStore) -> None:
    record = await _created(store)
    finished = new_record(name=record.name, done=True)
    done = await store.update(dataclasses.replace(finished, version=record.version))

    with pytest.raises(OperationDone):
        await store.append(done, _events(1))

    assert await store.journal(record.name) == []


async def test_a_missing_operation_takes_no_append(store: OperationStore) -> None:
    with pytest.raises(NotFound):
        await store.append(dataclasses.replace(new_record(), version=1), _events(1))


async def test_a_seq_stored_already_refuses_the_whole_append(store: OperationStore) -> None:
    record = await _created(store)
    await store.append(record, _events(1, 2))

    with pytest.raises(Aborted):
        await store.append(record, _events(2))
    with pytest.raises(Aborted):
        await store.append(record, _events(2, 3))

    assert await store.journal(record.name) == _events(1, 2)


async def test_events_no_store_may_keep_are_refused_before_anything_is_written(
    store: OperationStore,
) -> None:
    record = await _created(store)

    with pytest.raises(InvalidArgument):
        await store.append(record, _events(2, 1))
    with pytest.raises(FailedPrecondition):
        await store.append(record, [JournalEvent(1, "x" * (MAX_JOURNAL_EVENT_BYTES + 1))])

    assert await store.journal(record.name) == []


async def test_an_empty_append_writes_nothing(store: OperationStore) -> None:
    record = await _created(store)

    await store.append(record, [])

    assert await store.journal(record.name) == []
    assert (await store.get(record.name)).version == record.version


async def test_another_store_over_the_same_data_reads_what_was_appended(
    store: OperationStore, connect: Connect
) -> None:
    record = await _created(store)
    other = await connect()

    await store.append(record, _events(1))

    assert await other.journal(record.name) == _events(1)


async def test_concurrent_appends_of_the_same_seq_keep_one(
    store: OperationStore, connect: Connect
) -> None:
    record = await _created(store)
    other = await connect()

    results = await asyncio.gather(
        store.append(record, [JournalEvent(1, '"a"')]),
        other.append(record, [JournalEvent(1, '"b"')]),
        return_exceptions=True,
    )

    assert sorted(type(r).__name__ for r in results) == ["Aborted", "NoneType"]
    (event,) = await store.journal(record.name)
    assert event.data == ('"a"' if results[0] is None else '"b"')


async def test_an_append_and_an_update_of_the_same_version_race_fairly(
    store: OperationStore, connect: Connect
) -> None:
    record = await _created(store)
    other = await connect()

    results = await asyncio.gather(
        store.append(record, _events(1)),
        other.update(dataclasses.replace(record, state="MOVED"), journal=_events(1)),
        return_exceptions=True,
    )

    # The append first: the update's own event 1 clashes. The update first: the append
    # meets another version. Either way one wins and one event 1 is stored.
    assert sum(1 for r in results if not isinstance(r, BaseException)) == 1
    assert [e.seq for e in await store.journal(record.name)] == [1]
    assert all(isinstance(r, Aborted) for r in results if isinstance(r, BaseException))
