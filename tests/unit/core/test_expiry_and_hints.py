"""Expiry (bounded sweeps that never touch unfinished work) and push hints, on MemoryStore
and fake time."""

from __future__ import annotations

import dataclasses
import uuid

from google.longrunning import operations_pb2
from google.protobuf import empty_pb2

from lro_server.core.expiry import DAY, Expiry
from lro_server.core.hints import PushHints
from lro_server.core.labels import SearchKeys
from lro_server.core.record import OperationRecord
from lro_server.resume.chain import child_request_id
from lro_server.testing.clock import FakeClock
from lro_server.testing.memory_store import MemoryStore


def _record(request_id: str = "", run_id: int = 0, holder: str = "") -> OperationRecord:
    return OperationRecord(
        operation=operations_pb2.Operation(name=f"operations/{uuid.uuid4()}"),
        request_id=request_id,
        keys=SearchKeys(run_id=run_id),
        lease_holder=holder,
        lease_expire_us=2**62 if holder else 0,
    )


async def _finish(store: MemoryStore, record: OperationRecord) -> OperationRecord:
    done = operations_pb2.Operation(name=record.name, done=True)
    done.response.Pack(empty_pb2.Empty())
    return await store.update(dataclasses.replace(record, operation=done))


def _parent(record: OperationRecord) -> str | None:
    if record.request_id.startswith("chain-"):
        parent_id = record.request_id[len("chain-") :].rpartition("-")[0]
        return f"operations/{parent_id}"
    return None


async def test_a_sweep_deletes_only_old_done_operations() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    old_running, _ = await store.create(_record())
    old_done = await _finish(store, (await store.create(_record()))[0])
    clock.step(31 * DAY)
    young_done = await _finish(store, (await store.create(_record()))[0])
    expiry = Expiry(store, clock)

    assert await expiry.purge(30 * DAY) == 1

    names = {r.name for r in await store.expired(2**62, None, 100)}
    assert names == {young_done.name}
    assert (await store.get(old_running.name)).done is False  # never unfinished work
    assert old_done.name not in names


async def test_a_done_child_of_an_unfinished_parent_is_kept() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    parent, _ = await store.create(_record())
    child, _ = await store.create(_record(request_id=child_request_id(parent.name, 0)))
    child = await _finish(store, child)
    orphan = await _finish(store, (await store.create(_record("chain-gone-0")))[0])
    clock.step(40 * DAY)
    expiry = Expiry(store, clock, parent_of=_parent)

    assert await expiry.purge(30 * DAY) == 1  # the orphan: its parent is gone
    assert (await store.get(child.name)).done
    await _finish(store, parent)
    clock.step(40 * DAY)
    assert await expiry.purge(30 * DAY) == 2  # now the child and then the parent go
    assert orphan.name not in {r.name for r in await store.expired(2**62, None, 10)}


async def test_a_sweep_is_bounded() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    for _ in range(25):
        await _finish(store, (await store.create(_record()))[0])
    clock.step(2 * DAY)
    expiry = Expiry(store, clock)
    assert await expiry.purge(DAY, limit=10) == 10
    assert await expiry.purge(DAY, limit=10) == 10
    assert await expiry.purge(DAY, limit=10) == 5
    assert await expiry.purge(DAY, limit=10) == 0


async def test_a_hint_pokes_locally_or_leaves_a_stamp_for_the_holder() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    mine, _ = await store.create(_record(run_id=42, holder="me"))
    theirs, _ = await store.create(_record(run_id=42, holder="other"))
    await _finish(store, (await store.create(_record(run_id=42, holder="me")))[0])
    unrelated, _ = await store.create(_record(run_id=7, holder="me"))
    poked: list[str] = []
    hints = PushHints(store, "me", poked.append, clock)

    assert await hints.run(42) == 2  # the done one is not refreshed

    assert mine.name in poked and unrelated.name not in poked
    assert (await store.get(mine.name)).hint_us == 0  # no write for a local hint
    assert (await store.get(theirs.name)).hint_us > 0
    assert (hints.local, hints.remote) == (1, 1)
