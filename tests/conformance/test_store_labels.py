"""OperationStore conformance: labels, Databricks ids and the expiry walk, on every backend.

Labels are set at create and kept; ``labels.<key>`` and ``metadata.<id>`` filters select
the same operations on every backend (in any position of a filter, and paged through the
label index); ``expired`` lists only done operations, oldest change first.
"""

from __future__ import annotations

import dataclasses

import pytest
from store_records import list_all, list_page, listing_order, names, new_record

from lro_server.core.labels import SearchKeys
from lro_server.core.record import OperationRecord
from lro_server.core.store import OperationStore
from lro_server.testing.clock import FakeClock


def _labeled(labels: dict[str, str], **keys: int | str) -> OperationRecord:
    return dataclasses.replace(new_record(), labels=labels, keys=SearchKeys(**keys))  # type: ignore[arg-type]


async def _fleet(store: OperationStore, clock: FakeClock) -> dict[str, OperationRecord]:
    specs = {
        "a": ({"team": "data", "env": "prod"}, {"job_id": 7, "run_id": 70}),
        "b": ({"team": "data"}, {"job_id": 7, "run_id": 71}),
        "c": ({"team": "ml", "env": "dev"}, {"cluster_id": "0101-a", "run_id": 72}),
        "d": ({}, {"warehouse_id": "wh1"}),
        "e": ({"team": ""}, {"pipeline_id": "p-1"}),
    }
    created = {}
    for key, (labels, ids) in specs.items():
        created[key] = (await store.create(_labeled(labels, **ids)))[0]
        clock.step(0.001)
    return created


async def test_labels_and_ids_survive_create_get_and_update(store: OperationStore) -> None:
    record = _labeled({"team": "data"}, job_id=5, run_id=50, cluster_id="c1")
    created, _ = await store.create(record)
    assert created.labels == {"team": "data"}
    fetched = await store.get(created.name)
    assert fetched.labels == {"team": "data"}
    assert fetched.keys == SearchKeys(job_id=5, run_id=50, cluster_id="c1")
    moved = dataclasses.replace(fetched, keys=SearchKeys(job_id=5, run_id=51))
    updated = await store.update(moved)
    again = await store.get(created.name)
    assert again.keys == SearchKeys(job_id=5, run_id=51) == updated.keys
    assert again.labels == {"team": "data"}
    assert names(await list_page(store, filter="metadata.run_id = 51")) == [created.name]
    assert await list_page(store, filter="metadata.run_id = 50") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('labels.team = "data"', "ab"),
        ('labels.team = "ml"', "c"),
        ('labels.team != "data"', "ce"),
        ("labels.team:*", "abc"),
        ('labels.team = "da*"', "ab"),
        ('labels.team:"at"', "ab"),
        ('NOT labels.team = "data"', "cde"),
        ('labels.team = "data" AND labels.env = "prod"', "a"),
        ('labels.team = "data" AND metadata.run_id = 71', "b"),
        ('labels.env = "dev" OR labels.env = "prod"', "ac"),
        ('labels.missing = "x"', ""),
        ('labels.team = "data" AND NOT labels.env:*', "b"),
        ("metadata.job_id = 7", "ab"),
        ("metadata.job_id != 7", ""),
        ("metadata.run_id >= 71", "bc"),
        ('metadata.cluster_id = "0101-a"', "c"),
        ('metadata.warehouse_id = "wh1"', "d"),
        ('metadata.pipeline_id = "p-1"', "e"),
        ("metadata.job_id:*", "ab"),
        ("NOT metadata.job_id:*", "cde"),
    ],
)
async def test_label_and_id_filters(
    store: OperationStore, clock: FakeClock, text: str, expected: str
) -> None:
    fleet = await _fleet(store, clock)
    want = listing_order([fleet[k] for k in expected])
    assert names(await list_page(store, filter=text)) == names(want)


@pytest.mark.parametrize("page_size", [1, 2, 5])
async def test_label_listing_pages_in_order(
    store: OperationStore, clock: FakeClock, page_size: int
) -> None:
    made = []
    for index in range(7):
        made.append((await store.create(_labeled({"team": "data"} if index % 3 else {})))[0])
        if index % 2:
            clock.step(0.001)  # some share a create time: the name breaks the tie
    want = listing_order([r for i, r in enumerate(made) if i % 3])
    got = await list_all(store, page_size=page_size, filter='labels.team = "data"')
    assert names(got) == names(want)


async def test_label_listing_respects_the_owner(store: OperationStore) -> None:
    mine = (await store.create(dataclasses.replace(_labeled({"t": "x"}), owner="alice")))[0]
    await store.create(dataclasses.replace(_labeled({"t": "x"}), owner="bob"))
    assert names(await list_page(store, filter='labels.t = "x"', owner="alice")) == [mine.name]


async def test_delete_forgets_the_labels(store: OperationStore) -> None:
    created, _ = await store.create(_labeled({"team": "data"}))
    await store.delete(created.name)
    assert await list_page(store, filter='labels.team = "data"') == []


async def test_expired_lists_only_done_operations_oldest_first(
    store: OperationStore, clock: FakeClock
) -> None:
    running = (await store.create(new_record()))[0]
    finished = []
    for _ in range(3):
        record = (await store.create(new_record()))[0]
        clock.step(0.01)
        done = dataclasses.replace(record, operation=new_record(done=True).operation)
        done.operation.name = record.name
        finished.append(await store.update(done))
    clock.step(0.01)
    late = (await store.create(new_record(done=True)))[0]
    cutoff = late.update_time_us  # strictly before: "late" is not expired yet

    first = await store.expired(cutoff, None, 2)
    assert names(first) == names(finished[:2])
    rest = await store.expired(cutoff, (first[-1].update_time_us, first[-1].name), 10)
    assert names(rest) == names(finished[2:])
    everything = await store.expired(cutoff + 1_000_000, None, 10)
    assert running.name not in names(everything)
    assert names(everything) == [*names(finished), late.name]
