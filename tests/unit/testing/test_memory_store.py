"""MemoryStore's own promises beyond the port (the port itself: tests/conformance).

Records are values (nothing a caller does to a message it passed in or got back changes
what is stored), stores over one MemoryData behave as replicas of one database, and a
closed store answers Unavailable.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading

import pytest
from google.longrunning import operations_pb2

from lro_server.core.errors import InvalidArgument, NotFound, Unavailable
from lro_server.core.record import OperationRecord
from lro_server.core.store import ListQuery
from lro_server.testing import MemoryData, MemoryStore
from lro_server.testing.clock import FakeClock


def _record(name: str = "operations/a", **fields: object) -> OperationRecord:
    return OperationRecord(operation=operations_pb2.Operation(name=name), **fields)  # type: ignore[arg-type]


async def test_changing_a_message_passed_to_create_or_update_changes_nothing_stored() -> None:
    store = MemoryStore(FakeClock())
    record = _record(payload='{"run_id":1}')

    created, _ = await store.create(record)
    record.operation.done = True
    assert (await store.get("operations/a")) == created
    assert not created.done and created.payload == '{"run_id":1}'

    change = dataclasses.replace(created, state="RUNNING")
    updated = await store.update(change)
    change.operation.metadata.type_url = "type.googleapis.com/x.Changed"
    assert (await store.get("operations/a")) == updated
    assert updated.metadata_type == ""


async def test_changing_a_returned_record_changes_nothing_stored() -> None:
    store = MemoryStore(FakeClock())
    await store.create(_record(payload='{"entity":{"id":1}}'))

    for got in [
        await store.get("operations/a"),
        *(await store.list(ListQuery(None, None, None, 10))),
        *(await store.claim("replica", 30, limit=10)),
    ]:
        got.operation.done = True
        got.operation.name = "operations/stolen"

    stored = await store.get("operations/a")
    assert (stored.name, stored.done) == ("operations/a", False)


async def test_a_payload_that_is_not_a_json_object_is_refused() -> None:
    store = MemoryStore(FakeClock())
    for bad in ("not json", "[1, 2]"):
        with pytest.raises(InvalidArgument):
            await store.create(_record("operations/b", payload=bad))
    with pytest.raises(NotFound):
        await store.get("operations/b")


async def test_stores_over_one_data_share_it_and_closing_one_leaves_the_data() -> None:
    data = MemoryData()
    first, second = MemoryStore(FakeClock(), data=data), MemoryStore(FakeClock(), data=data)
    created, _ = await first.create(_record())

    await first.close()

    assert await second.get("operations/a") == created
    assert len(data) == 1
    reopened = MemoryStore(FakeClock(), data=data)
    assert await reopened.get("operations/a") == created


@pytest.mark.parametrize(
    "call",
    ["create", "get", "list", "update", "delete", "claim", "release", "ping"],
)
async def test_a_closed_store_is_unavailable(call: str) -> None:
    store = MemoryStore(FakeClock())
    created, _ = await store.create(_record())
    await store.close()
    await store.close()
    calls = {
        "create": lambda: store.create(_record("operations/b")),
        "get": lambda: store.get(created.name),
        "list": lambda: store.list(ListQuery(None, None, None, 10)),
        "update": lambda: store.update(created),
        "delete": lambda: store.delete(created.name),
        "claim": lambda: store.claim("r", 30, limit=1),
        "release": lambda: store.release("r", [created.name]),
        "ping": store.ping,
    }

    with pytest.raises(Unavailable) as caught:
        await calls[call]()

    assert caught.value.reason == "STORE_CLOSED"


def test_stores_on_several_threads_never_share_an_operation() -> None:
    data = MemoryData()
    names = [f"operations/{i:03d}" for i in range(200)]

    async def fill() -> None:
        store = MemoryStore(FakeClock(), data=data)
        for name in names:
            await store.create(_record(name))

    asyncio.run(fill())
    claimed: list[list[str]] = []
    lock = threading.Lock()

    def claimer(holder: str) -> None:
        async def run() -> list[str]:
            store = MemoryStore(FakeClock(), data=data)
            return [r.name for r in await store.claim(holder, 30, limit=60)]

        result = asyncio.run(run())
        with lock:
            claimed.append(result)

    threads = [threading.Thread(target=claimer, args=(f"r{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    everything = [name for batch in claimed for name in batch]
    assert sorted(everything) == names
