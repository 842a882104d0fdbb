"""OperationStore conformance: ``cached`` answers from memory only what ``get`` would answer.

A backend may answer None whenever it likes (Spanner always does); what it must never do
is answer an older version, a record someone deleted, or a record another replica has
changed since. Every check below is "None, or exactly what get returns now".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

import pytest
from store_records import new_record

from lro_server.core.errors import NotFound
from lro_server.core.store import OperationStore

Connect = Callable[[], Awaitable[OperationStore]]


async def _exact(store: OperationStore, name: str) -> None:
    """``store.cached(name)`` is None or what ``get`` returns."""
    hit = store.cached(name)
    if hit is not None:
        assert hit == await store.get(name)


async def test_a_missing_record_is_not_cached(store: OperationStore) -> None:
    assert store.cached(new_record().name) is None


async def test_a_created_and_read_record_is_answered_exactly(store: OperationStore) -> None:
    created, _ = await store.create(new_record())
    await _exact(store, created.name)
    await store.get(created.name)
    await _exact(store, created.name)


async def test_an_update_is_answered_never_the_version_before(store: OperationStore) -> None:
    created, _ = await store.create(new_record(state="PENDING"))
    await store.get(created.name)
    updated = await store.update(dataclasses.replace(created, state="RUNNING"))
    hit = store.cached(created.name)
    assert hit is None or (hit.version, hit.state) == (updated.version, "RUNNING")
    await store.get(created.name)
    await _exact(store, created.name)


async def test_a_finished_operation_is_answered_in_its_final_state(store: OperationStore) -> None:
    created, _ = await store.create(new_record())
    await store.get(created.name)
    done = new_record(name=created.name, done=True).operation
    finished = await store.update(dataclasses.replace(created, operation=done))
    hit = store.cached(created.name)
    assert hit is None or (hit.done and hit.version == finished.version)
    await store.get(created.name)
    await _exact(store, created.name)


async def test_a_deleted_record_is_not_answered(store: OperationStore) -> None:
    created, _ = await store.create(new_record())
    await store.get(created.name)
    await store.delete(created.name)
    assert store.cached(created.name) is None


async def test_a_batched_update_is_answered_never_the_version_before(
    store: OperationStore,
) -> None:
    created, _ = await store.create(new_record(state="PENDING"))
    await store.get(created.name)
    (written,) = await store.update_many([dataclasses.replace(created, state="RUNNING")])
    assert not isinstance(written, Exception)
    hit = store.cached(created.name)
    assert hit is None or (hit.version, hit.state) == (written.version, "RUNNING")


async def test_a_claim_is_answered_with_its_lease(store: OperationStore) -> None:
    created, _ = await store.create(new_record())
    await store.get(created.name)
    (claimed,) = await store.claim("replica-a", 30.0, 10)
    hit = store.cached(created.name)
    assert hit is None or hit.lease_holder == claimed.lease_holder == "replica-a"
    await _exact(store, created.name)


async def test_another_replicas_writes_are_never_hidden(
    store: OperationStore, connect: Connect
) -> None:
    other = await connect()
    kept, _ = await store.create(new_record(state="PENDING"))
    gone, _ = await store.create(new_record())
    await store.get(kept.name)
    await store.get(gone.name)

    current = await other.get(kept.name)
    updated = await other.update(dataclasses.replace(current, state="RUNNING"))
    await other.delete(gone.name)

    hit = store.cached(kept.name)
    assert hit is None or (hit.version, hit.state) == (updated.version, "RUNNING")
    assert store.cached(gone.name) is None
    with pytest.raises(NotFound):
        await store.get(gone.name)
