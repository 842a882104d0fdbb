"""A SQLite file whose write lock another connection holds: the store waits without blocking.

The other connection stands for another process (a backup, a second replica): it takes
the write lock with ``BEGIN IMMEDIATE``. The store waits with its clock's ``sleep``, so on
the FakeClock a waiting write stays suspended until the test moves time; the tests see
every pause and decide when the lock goes away. No test sleeps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.longrunning import operations_pb2

from lro_server.core.errors import Unavailable
from lro_server.core.record import OperationRecord
from lro_server.core.store import ListQuery
from lro_server.storage import SqliteStore
from lro_server.storage.sqlite_errors import FIRST_PAUSE, MAX_PAUSE
from lro_server.testing.clock import FakeClock


def _record(n: int) -> OperationRecord:
    return OperationRecord(
        operation=operations_pb2.Operation(name=f"operations/00000000-0000-4000-8000-{n:012d}")
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "lro.db"


@pytest.fixture
def other(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection to the same file (it opens after the store created the schema)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()


async def test_a_write_that_meets_the_lock_pauses_with_backoff_then_is_unavailable(
    path: Path, other: sqlite3.Connection
) -> None:
    clock = FakeClock()
    store = SqliteStore(path, clock, busy_timeout=0.5)
    created, _ = await store.create(_record(1))
    other.execute("BEGIN IMMEDIATE")

    write = asyncio.ensure_future(store.update(dataclasses.replace(created, state="RUNNING")))
    await clock.advance(0.5)

    with pytest.raises(Unavailable) as caught:
        await write
    assert caught.value.reason == "STORE_BUSY"
    assert "busy timeout (0.5s)" in caught.value.message
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    assert sum(clock.sleeps) == pytest.approx(0.5)
    assert clock.sleeps[:3] == [FIRST_PAUSE, 2 * FIRST_PAUSE, 4 * FIRST_PAUSE]
    assert max(clock.sleeps) == MAX_PAUSE
    other.execute("ROLLBACK")
    assert await store.get(created.name) == created  # nothing was written
    await store.close()


@pytest.mark.parametrize("call", ["create", "update", "delete", "claim", "release"])
async def test_a_write_that_meets_the_lock_succeeds_once_it_is_released(
    path: Path, other: sqlite3.Connection, call: str
) -> None:
    clock = FakeClock()
    store = SqliteStore(path, clock, busy_timeout=30)
    created, _ = await store.create(_record(1))
    await store.claim("a", 30, limit=10)
    other.execute("BEGIN IMMEDIATE")
    calls = {
        "create": lambda: store.create(_record(2)),
        "update": lambda: store.update(dataclasses.replace(created, state="RUNNING")),
        "delete": lambda: store.delete(created.name),
        "claim": lambda: store.claim("a", 30, limit=10),
        "release": lambda: store.release("a", [created.name]),
    }
    write = asyncio.ensure_future(calls[call]())

    await clock.advance(0.1)  # still locked: the write pauses again and again
    paused = len(clock.sleeps)
    assert paused > 3 and not write.done()
    other.execute("COMMIT")
    await clock.advance(MAX_PAUSE)

    await asyncio.wait_for(write, 5)
    assert len(clock.sleeps) == paused  # the attempt after the last pause went through
    await store.close()


async def test_reads_answer_while_a_write_waits_for_the_lock(
    path: Path, other: sqlite3.Connection
) -> None:
    clock = FakeClock()
    store = SqliteStore(path, clock, busy_timeout=30)
    read_before, _ = await store.create(_record(1))
    never_read, _ = await store.create(_record(2))
    doomed, _ = await store.create(_record(3))
    assert await store.get(read_before.name) == read_before
    other.execute("BEGIN IMMEDIATE")
    write = asyncio.ensure_future(store.delete(doomed.name))
    await clock.settle()
    assert clock.sleeps and not write.done()  # paused on the clock

    # The loop answers everything else meanwhile.
    assert await store.get(read_before.name) == read_before
    assert await store.get(never_read.name) == never_read
    assert await store.get(doomed.name) == doomed
    assert len(await store.list(ListQuery(None, None, None, 10))) == 3
    await store.ping()
    assert not write.done()

    other.execute("COMMIT")
    await clock.advance(MAX_PAUSE)
    await asyncio.wait_for(write, 5)
    await store.close()


async def test_a_record_read_while_its_write_waits_is_not_served_stale_afterwards(
    path: Path, other: sqlite3.Connection
) -> None:
    # The write drops the cache entry when it runs, not when it was first asked for: a read
    # during the wait caches the old row again, and that entry must not outlive the write.
    clock = FakeClock()
    store = SqliteStore(path, clock, busy_timeout=30)
    created, _ = await store.create(_record(1))
    other.execute("BEGIN IMMEDIATE")
    write = asyncio.ensure_future(store.update(dataclasses.replace(created, state="RUNNING")))
    await clock.settle()
    assert await store.get(created.name) == created  # cached again, old version

    other.execute("COMMIT")
    await clock.advance(MAX_PAUSE)
    updated = await asyncio.wait_for(write, 5)

    assert await store.get(created.name) == updated
    assert updated.version == 2
    await store.close()


async def test_no_lock_no_pause(path: Path) -> None:
    clock = FakeClock()
    store = SqliteStore(path, clock)
    created, _ = await store.create(_record(1))
    await store.update(dataclasses.replace(created, state="RUNNING"))
    await store.claim("a", 30, limit=10)
    await store.delete(created.name)

    assert clock.sleeps == []
    await store.close()


async def test_a_busy_timeout_of_zero_fails_at_once(path: Path, other: sqlite3.Connection) -> None:
    clock = FakeClock()
    store = SqliteStore(path, clock, busy_timeout=0)
    created, _ = await store.create(_record(1))
    other.execute("BEGIN IMMEDIATE")

    with pytest.raises(Unavailable):
        await store.delete(created.name)

    assert clock.sleeps == []
    await store.close()
