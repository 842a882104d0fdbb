"""OperationStore conformance: the journal beside an operation (durable methods' events).

Events are appended in the transaction of the operation's compare-and-set: both are
written or neither; they are read back in seq order after a given seq, and go with the
operation when it is deleted. Every backend in conftest.BACKENDS must pass unchanged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable

import pytest
from google.protobuf import duration_pb2
from store_records import list_page, names, new_record

from lro_server.core.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from lro_server.core.labels import SearchKeys
from lro_server.core.record import OperationRecord
from lro_server.core.store import MAX_JOURNAL_EVENT_BYTES, JournalEvent, OperationStore

Connect = Callable[[], Awaitable[OperationStore]]


def _events(*seqs: int) -> list[JournalEvent]:
    return [
        JournalEvent(seq, json.dumps({"kind": "STEP_DONE", "pos": seq, "ü": "ünï"})) for seq in seqs
    ]


async def _created(store: OperationStore) -> OperationRecord:
    record, _ = await store.create(new_record())
    return record


async def test_an_operation_without_events_has_an_empty_journal(store: OperationStore) -> None:
    record = await _created(store)
    assert await store.journal(record.name) == []
    assert await store.journal("operations/00000000-0000-4000-8000-0000000000ff") == []


async def test_events_are_appended_with_the_update_and_read_in_order(
    store: OperationStore,
) -> None:
    record = await _created(store)

    first = await store.update(dataclasses.replace(record, state="ONE"), journal=_events(1, 2))
    second = await store.update(dataclasses.replace(first, state="TWO"), journal=_events(3))

    assert second.version == 3 and (await store.get(record.name)).state == "TWO"
    assert await store.journal(record.name) == _events(1, 2, 3)
    assert await store.journal(record.name, after_seq=2) == _events(3)
    assert await store.journal(record.name, after_seq=3) == []


async def test_an_update_that_loses_its_compare_and_set_appends_nothing(
    store: OperationStore,
) -> None:
    record = await _created(store)
    await store.update(record, journal=_events(1))

    with pytest.raises(Aborted):
        await store.update(record, journal=_events(2))  # stale version

    assert await store.journal(record.name) == _events(1)


async def test_a_seq_stored_already_is_refused_with_the_update(store: OperationStore) -> None:
    record = await _created(store)
    stored = await store.update(record, journal=_events(1, 2))

    with pytest.raises(Aborted):
        await store.update(dataclasses.replace(stored, state="LOST"), journal=_events(2, 3))

    assert await store.journal(record.name) == _events(1, 2)
    assert (await store.get(record.name)).version == stored.version


async def test_events_must_have_increasing_seqs(store: OperationStore) -> None:
    record = await _created(store)
    with pytest.raises(InvalidArgument):
        await store.update(record, journal=_events(2, 1))
    with pytest.raises(InvalidArgument):
        await store.update(record, journal=_events(0))
    assert await store.journal(record.name) == []
    assert (await store.get(record.name)).version == 1


async def test_an_oversized_event_is_refused_before_anything_is_written(
    store: OperationStore,
) -> None:
    record = await _created(store)
    big = JournalEvent(1, "x" * (MAX_JOURNAL_EVENT_BYTES + 1))

    with pytest.raises(FailedPrecondition, match="limit"):
        await store.update(record, journal=[big])

    assert (await store.get(record.name)).version == 1
    assert await store.journal(record.name) == []


async def test_the_final_update_may_append_and_then_nothing_more(store: OperationStore) -> None:
    record = await _created(store)
    finished = new_record(name=record.name, done=True)
    done = await store.update(dataclasses.replace(finished, version=1), journal=_events(1))

    assert done.done and await store.journal(record.name) == _events(1)
    with pytest.raises(FailedPrecondition):
        await store.update(done, journal=_events(2))
    assert await store.journal(record.name) == _events(1)


async def test_an_update_with_events_may_change_what_listing_finds(
    store: OperationStore,
) -> None:
    record = await _created(store)
    keyed = dataclasses.replace(
        new_record(name=record.name, metadata=duration_pb2.Duration(seconds=1)),
        version=record.version,
        keys=SearchKeys(job_id=42, cluster_id="c-1"),
    )

    stored = await store.update(keyed, journal=_events(1))

    assert (await store.get(record.name)).keys == SearchKeys(job_id=42, cluster_id="c-1")
    assert names(await list_page(store, filter="metadata.job_id = 42")) == [record.name]
    found = await list_page(store, filter='metadata.@type = "google.protobuf.Duration"')
    assert names(found) == [record.name]
    # And with nothing but the journal and the checkpoint changing, as a durable step does.
    plain = await store.update(dataclasses.replace(stored, checkpoint=b"{}"), journal=_events(2))
    assert plain.version == stored.version + 1
    assert (await store.get(record.name)).checkpoint == b"{}"
    assert names(await list_page(store, filter="metadata.job_id = 42")) == [record.name]
    assert await store.journal(record.name) == _events(1, 2)


async def test_missing_operation_update_with_events_is_not_found(store: OperationStore) -> None:
    with pytest.raises(NotFound):
        await store.update(dataclasses.replace(new_record(), version=1), journal=_events(1))


async def test_delete_removes_the_journal(store: OperationStore) -> None:
    record = await _created(store)
    await store.update(record, journal=_events(1, 2))

    await store.delete(record.name)

    assert await store.journal(record.name) == []


async def test_a_journal_of_a_thousand_events_reads_back_whole(store: OperationStore) -> None:
    record = await _created(store)
    for start in range(1, 1001, 100):
        record = await store.update(record, journal=_events(*range(start, start + 100)))

    events = await store.journal(record.name)

    assert [e.seq for e in events] == list(range(1, 1001))
    assert json.loads(events[-1].data)["pos"] == 1000


async def test_journals_are_kept_per_operation(store: OperationStore) -> None:
    a, b = await _created(store), await _created(store)
    await store.update(a, journal=_events(1))
    await store.update(b, journal=_events(1, 2))

    assert await store.journal(a.name) == _events(1)
    assert await store.journal(b.name) == _events(1, 2)


async def test_another_store_over_the_same_data_reads_the_journal(
    store: OperationStore, connect: Connect
) -> None:
    record = await _created(store)
    other = await connect()
    await store.update(record, journal=_events(1))

    assert await other.journal(record.name) == _events(1)


async def test_concurrent_appends_of_the_same_seq_keep_one(
    store: OperationStore, connect: Connect
) -> None:
    record = await _created(store)
    other = await connect()

    results = await asyncio.gather(
        store.update(dataclasses.replace(record, state="A"), journal=[JournalEvent(1, '"a"')]),
        other.update(dataclasses.replace(record, state="B"), journal=[JournalEvent(1, '"b"')]),
        return_exceptions=True,
    )

    won = [r for r in results if isinstance(r, OperationRecord)]
    assert len(won) == 1 and all(isinstance(r, Aborted) for r in results if r not in won)
    (event,) = await store.journal(record.name)
    assert event.data == ('"a"' if won[0].state == "A" else '"b"')
