"""OperationStore conformance: listing order, keyset paging, owner scoping and AIP-160 filters.

The filter table is the contract between backends: every backend returns exactly the
expected set for every filter (see lro_server.core.filter for the semantics).
"""

from __future__ import annotations

import dataclasses
import random

import pytest
from google.protobuf import any_pb2, duration_pb2
from store_records import list_all, list_page, listing_order, name_for, names, new_record

from lro_server.core.pagetoken import Cursor
from lro_server.core.record import OperationRecord
from lro_server.core.store import OperationStore
from lro_server.testing.clock import FakeClock

# --- order and paging -----------------------------------------------------------------------


async def _create_in_batches(
    store: OperationStore, clock: FakeClock, batches: int, per_batch: int, owner: str = ""
) -> list[OperationRecord]:
    """Records in batches that share one create time (names random within a batch)."""
    created = []
    for _ in range(batches):
        for _ in range(per_batch):
            created.append((await store.create(new_record(owner=owner)))[0])
        clock.step(0.001)
    return created


async def test_list_orders_newest_first_then_by_name_descending(
    store: OperationStore, clock: FakeClock
) -> None:
    created = await _create_in_batches(store, clock, batches=4, per_batch=3)

    listed = await list_page(store)

    assert listed == listing_order(created)  # whole records, equal to what get returns
    assert len({r.create_time_us for r in listed}) == 4


@pytest.mark.parametrize("page_size", [1, 2, 3, 7, 24, 100])
async def test_paging_visits_every_record_once_in_order(
    store: OperationStore, clock: FakeClock, page_size: int
) -> None:
    created = await _create_in_batches(store, clock, batches=6, per_batch=4)

    assert await list_all(store, page_size=page_size) == listing_order(created)


async def test_a_cursor_resumes_strictly_after_its_position(
    store: OperationStore, clock: FakeClock
) -> None:
    ordered = listing_order(await _create_in_batches(store, clock, batches=3, per_batch=3))

    for i, record in enumerate(ordered):
        after = Cursor(record.create_time_us, record.name)
        assert names(await list_page(store, after=after)) == names(ordered[i + 1 :])


async def test_a_cursor_at_a_deleted_record_still_resumes_in_place(
    store: OperationStore, clock: FakeClock
) -> None:
    ordered = listing_order(await _create_in_batches(store, clock, batches=3, per_batch=3))
    await store.delete(ordered[4].name)

    page = await list_page(store, after=Cursor(ordered[4].create_time_us, ordered[4].name))

    assert names(page) == names(ordered[5:])


async def test_records_created_behind_the_cursor_do_not_appear(
    store: OperationStore, clock: FakeClock
) -> None:
    ordered = listing_order(await _create_in_batches(store, clock, batches=2, per_batch=2))
    first_page = await list_page(store, limit=2)
    clock.step(10)
    await store.create(new_record())  # newer: belongs before the cursor

    rest = await list_page(store, after=Cursor(first_page[-1].create_time_us, first_page[-1].name))

    assert names(first_page + rest) == names(ordered)


async def test_limit_caps_the_page(store: OperationStore, clock: FakeClock) -> None:
    ordered = listing_order(await _create_in_batches(store, clock, batches=2, per_batch=3))

    assert names(await list_page(store, limit=4)) == names(ordered[:4])
    assert await list_page(store, limit=0) == []


async def test_listing_an_empty_store_is_empty(store: OperationStore) -> None:
    assert await list_page(store) == []
    assert await list_page(store, owner="alice", filter="done") == []


async def test_owner_scoping(store: OperationStore, clock: FakeClock) -> None:
    alice = await _create_in_batches(store, clock, 2, 2, owner="alice")
    bob = await _create_in_batches(store, clock, 2, 2, owner="bob")
    nobody = await _create_in_batches(store, clock, 1, 2, owner="")

    assert await list_page(store, owner="alice") == listing_order(alice)
    assert await list_page(store, owner="bob") == listing_order(bob)
    assert await list_page(store, owner="") == listing_order(nobody)
    assert await list_page(store, owner="carol") == []
    assert await list_page(store, owner=None) == listing_order(alice + bob + nobody)
    assert await list_all(store, owner="bob", page_size=1) == listing_order(bob)


async def test_paging_is_stable_under_random_create_order(
    store: OperationStore, clock: FakeClock
) -> None:
    # Many names per create time, inserted in random order: ties must break by name.
    rng = random.Random(7)
    labels = list(range(1, 31))
    rng.shuffle(labels)
    created = []
    for n in labels:
        clock.set(clock.now().replace(second=n % 3))
        created.append((await store.create(new_record(name=name_for(n))))[0])

    assert await list_all(store, page_size=4) == listing_order(created)


# --- filters --------------------------------------------------------------------------------

RUNNING, CANCELLED, SUCCEEDED, FAILED, PENDING = (
    "running",
    "cancelled",
    "succeeded",
    "failed",
    "pending",
)
ALL = {RUNNING, CANCELLED, SUCCEEDED, FAILED, PENDING}


@pytest.fixture
async def labelled(store: OperationStore, clock: FakeClock) -> dict[str, str]:
    """Five operations a second apart (create times T0+0s ... T0+4s); name -> label.

    ``running`` is updated at T0+15s; every other update time equals its create time.
    """
    specs = [
        (RUNNING, new_record(name=name_for(1), owner="alice", state="RUNNING")),
        (CANCELLED, new_record(name=name_for(2), owner="alice", state="CANCELLED", done=True,
                               error_code=1)),
        (SUCCEEDED, new_record(name=name_for(3), owner="bob", state="SUCCESS", done=True,
                               metadata=duration_pb2.Duration(seconds=3))),
        (FAILED, new_record(name=name_for(4), state="FAILED", done=True, error_code=13,
                            metadata=any_pb2.Any())),
        (PENDING, new_record(name=name_for(5), owner="bob", state="")),
    ]  # fmt: skip
    label_of = {}
    for label, record in specs:
        created, _ = await store.create(record)
        label_of[created.name] = label
        clock.step(1)
    clock.step(10)
    running = await store.get(name_for(1))
    await store.update(dataclasses.replace(running, payload='{"touched":true}'))
    return label_of


FILTERS: list[tuple[str, set[str]]] = [
    ("", ALL),
    # done (BOOL)
    ("done", {CANCELLED, SUCCEEDED, FAILED}),
    ("done = true", {CANCELLED, SUCCEEDED, FAILED}),
    ("done = false", {RUNNING, PENDING}),
    ("done != true", {RUNNING, PENDING}),
    ("NOT done", {RUNNING, PENDING}),
    ("-done", {RUNNING, PENDING}),
    # name (STRING)
    (f'name = "{name_for(3)}"', {SUCCEEDED}),
    (f'name != "{name_for(3)}"', ALL - {SUCCEEDED}),
    (f'name < "{name_for(3)}"', {RUNNING, CANCELLED}),
    (f'name <= "{name_for(3)}"', {RUNNING, CANCELLED, SUCCEEDED}),
    (f'name > "{name_for(3)}"', {FAILED, PENDING}),
    (f'name >= "{name_for(3)}"', {SUCCEEDED, FAILED, PENDING}),
    ('name = "operations/00000000-0000-4000-8000-*"', ALL),
    ('name = "operations/00000000-0000-4000-8000-00000000000*"', ALL),
    ('name = "operations/0*"', ALL),
    ('name = "operations/1*"', set()),
    ('name != "operations/0*"', set()),
    ('name:"0000000003"', {SUCCEEDED}),
    ("name:*", ALL),
    # metadata.@type (STRING, stored as the bare message name)
    ('metadata.@type = "google.protobuf.Struct"', {RUNNING, CANCELLED, PENDING}),
    ('metadata.@type = "type.googleapis.com/google.protobuf.Duration"', {SUCCEEDED}),
    ('metadata.@type != "google.protobuf.Struct"', {SUCCEEDED, FAILED}),
    ('metadata.@type = "google.protobuf.*"', ALL - {FAILED}),
    ('metadata.@type = "Google.protobuf.*"', set()),
    ('metadata.@type:"Dur"', {SUCCEEDED}),
    ('metadata.@type:"dur"', set()),
    ("metadata.@type:*", ALL - {FAILED}),
    # metadata.state (STRING; PENDING's is empty)
    ("metadata.state = RUNNING", {RUNNING}),
    ('metadata.state = "running"', set()),
    ('metadata.state = "RUN*"', {RUNNING}),
    ('metadata.state != "RUN*"', ALL - {RUNNING}),
    ('metadata.state = ""', {PENDING}),
    ('metadata.state:"ED"', {CANCELLED, FAILED}),
    ("metadata.state:*", ALL - {PENDING}),
    ('metadata.state < "F"', {CANCELLED, PENDING}),
    ('metadata.state >= "S"', {SUCCEEDED}),
    ('metadata.state > "RUNNING"', {SUCCEEDED}),
    ('metadata.state <= "FAILED"', {CANCELLED, FAILED, PENDING}),
    # error.code (INT; unset unless the operation failed)
    ("error.code = 1", {CANCELLED}),
    ("error.code != 1", {FAILED}),
    ("NOT error.code = 1", ALL - {CANCELLED}),
    ("error.code > 1", {FAILED}),
    ("error.code >= 1", {CANCELLED, FAILED}),
    ("error.code < 13", {CANCELLED}),
    ("error.code <= 13", {CANCELLED, FAILED}),
    ("error.code = 0", set()),
    ("error.code:*", {CANCELLED, FAILED}),
    ("NOT error.code:*", {RUNNING, SUCCEEDED, PENDING}),
    # create_time / update_time (TIMESTAMP)
    ('create_time = "2025-01-01T00:00:02Z"', {SUCCEEDED}),
    ('create_time = "2025-01-01T01:00:02+01:00"', {SUCCEEDED}),
    ('create_time != "2025-01-01T00:00:02Z"', ALL - {SUCCEEDED}),
    ('create_time < "2025-01-01T00:00:01Z"', {RUNNING}),
    ('create_time <= "2025-01-01T00:00:01Z"', {RUNNING, CANCELLED}),
    ('create_time > "2025-01-01T00:00:01Z"', {SUCCEEDED, FAILED, PENDING}),
    ('create_time >= "2025-01-01T00:00:01.000001Z"', {SUCCEEDED, FAILED, PENDING}),
    ('update_time > "2025-01-01T00:00:05Z"', {RUNNING}),
    ('update_time < "2025-01-01T00:00:01.5Z"', {CANCELLED}),
    ("update_time:*", ALL),
    # logic
    ("done AND error.code:*", {CANCELLED, FAILED}),
    ('done metadata.@type = "google.protobuf.Struct"', {CANCELLED}),
    ("done = false OR error.code = 13", {RUNNING, PENDING, FAILED}),
    ('NOT (done OR metadata.state = "RUNNING")', {PENDING}),
    (
        '(error.code = 1 OR error.code = 13) AND create_time > "2025-01-01T00:00:02Z"',
        {FAILED},
    ),
    ('done AND metadata.state = "SUCCESS" OR error.code = 1', {SUCCEEDED, CANCELLED}),
    ("NOT (NOT done)", {CANCELLED, SUCCEEDED, FAILED}),
]


@pytest.mark.parametrize(
    ("text", "expected"), FILTERS, ids=[text or "<empty>" for text, _ in FILTERS]
)
async def test_filter_selects_exactly(
    store: OperationStore, labelled: dict[str, str], text: str, expected: set[str]
) -> None:
    listed = await list_page(store, filter=text)

    assert {labelled[name] for name in names(listed)} == expected
    assert names(listed) == names(listing_order(listed))


async def test_filters_combine_with_owner_and_paging(
    store: OperationStore, labelled: dict[str, str]
) -> None:
    def labels(records: list[OperationRecord]) -> list[str]:
        return [labelled[name] for name in names(records)]

    assert labels(await list_page(store, owner="alice", filter="done = false")) == [RUNNING]
    assert labels(await list_page(store, owner="bob", filter="NOT error.code:*")) == [
        PENDING,
        SUCCEEDED,
    ]
    assert labels(await list_all(store, page_size=1, filter="done")) == [
        FAILED,
        SUCCEEDED,
        CANCELLED,
    ]
