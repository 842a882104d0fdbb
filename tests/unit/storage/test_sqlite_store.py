"""SQLite-only behaviour: URLs, schema and pragmas, error translation, the factory."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import sqlite3
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from lro_server.core.errors import (
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from lro_server.core.filter import parse
from lro_server.core.record import OperationRecord
from lro_server.core.store import ListQuery
from lro_server.storage import SqliteStore, migrate_store, open_sqlite_store, open_store
from lro_server.storage.sqlite_open import sqlite_path
from lro_server.storage.sqlite_schema import MIGRATIONS, SCHEMA_VERSION, TABLE, list_query
from lro_server.testing.clock import FakeClock


def _record() -> OperationRecord:
    from google.longrunning import operations_pb2

    return OperationRecord(
        operation=operations_pb2.Operation(name="operations/00000000-0000-4000-8000-000000000001")
    )


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/lro.db", "var/lro.db"),
        ("sqlite:////srv/data/lro.db", "/srv/data/lro.db"),
        ("sqlite:///lro.db", "lro.db"),
        ("sqlite://", ":memory:"),
        ("sqlite:///:memory:", ":memory:"),
    ],
)
def test_sqlite_urls_name_paths(url: str, path: str) -> None:
    assert sqlite_path(url) == path


@pytest.mark.parametrize(
    "url",
    ["sqlite:", "sqlite://host/lro.db", "sqlite:///", "sqlite:///dir/", "sqlite:///a.db?mode=ro",
     "file:///a.db", "spanner://x"],
)  # fmt: skip
def test_malformed_sqlite_urls_are_invalid(url: str) -> None:
    with pytest.raises(InvalidArgument):
        sqlite_path(url)


async def test_open_creates_parent_directories_for_absolute_urls(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "lro.db"
    store = open_sqlite_store(f"sqlite:///{path}", FakeClock())
    try:
        await store.create(_record())
    finally:
        await store.close()
    assert path.is_file()


async def test_relative_urls_resolve_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = await open_store("sqlite:///var/lro.db", clock=FakeClock())
    await store.close()
    assert (tmp_path / "var" / "lro.db").is_file()


async def test_a_new_file_gets_the_schema_wal_and_the_current_version(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "lro.db", FakeClock())
    await store.close()
    with sqlite3.connect(tmp_path / "lro.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        indexes = {
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        }
    suffixes = {
        "by_create", "by_owner_create", "by_request", "claimable", "held",
        "unfinished_by_create", "unfinished_by_owner_create", "done_by_update",
        "by_job_id", "by_run_id", "by_cluster_id", "by_warehouse_id", "by_pipeline_id",
    }  # fmt: skip
    assert indexes == {f"{TABLE}_{suffix}" for suffix in suffixes} | {"operation_labels_by_value"}


async def test_reopening_keeps_data_and_schema(tmp_path: Path) -> None:
    first = SqliteStore(tmp_path / "lro.db", FakeClock())
    created, _ = await first.create(_record())
    await first.close()
    second = SqliteStore(tmp_path / "lro.db", FakeClock())
    try:
        assert await second.get(created.name) == created
    finally:
        await second.close()


def test_a_schema_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "lro.db") as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(FailedPrecondition, match="newer"):
        SqliteStore(tmp_path / "lro.db", FakeClock())


async def test_a_write_locked_database_is_unavailable_but_readable(tmp_path: Path) -> None:
    # No busy budget: the write fails at once (waiting for the lock: test_sqlite_busy.py).
    store = SqliteStore(tmp_path / "lro.db", FakeClock(), busy_timeout=0)
    created, _ = await store.create(_record())
    other = sqlite3.connect(tmp_path / "lro.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(Unavailable) as caught:
            await store.delete(created.name)
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
        assert await store.get(created.name) == created  # WAL: readers are not blocked
        other.execute("ROLLBACK")
        await store.delete(created.name)
    finally:
        other.close()
        await store.close()
    with pytest.raises(Unavailable):
        await store.get(created.name)


async def test_a_closed_store_is_unavailable(tmp_path: Path) -> None:
    store = SqliteStore(":memory:", FakeClock())
    await store.close()
    with pytest.raises(Unavailable):
        await store.ping()
    with pytest.raises(Unavailable):
        await store.create(_record())


def test_an_unopenable_path_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable):
        SqliteStore(tmp_path, FakeClock())  # a directory


def test_a_file_that_is_not_a_database_is_internal(tmp_path: Path) -> None:
    path = tmp_path / "lro.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(Internal):
        SqliteStore(path, FakeClock())


async def test_bad_arguments_are_invalid(tmp_path: Path) -> None:
    store = SqliteStore(":memory:", FakeClock())
    try:
        with pytest.raises(InvalidArgument):
            await store.create(OperationRecord(operation=_record().operation, payload="not json"))
        with pytest.raises(InvalidArgument):
            await store.claim("", 30, limit=1)
        with pytest.raises(InvalidArgument):
            await store.claim("a", 0, limit=1)
        with pytest.raises(NotFound):
            await store.get(_record().name)
    finally:
        await store.close()


async def test_open_store_rejects_unknown_schemes() -> None:
    for url in ("postgres://user:secret@db/lro", "", "lro.db"):
        with pytest.raises(InvalidArgument, match="sqlite://, spanner://") as caught:
            await open_store(url)
        assert "secret" not in caught.value.message


async def test_open_store_hands_spanner_urls_to_the_spanner_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    sentinel = object()

    async def open_spanner_store(url: str, **kwargs: Any) -> object:
        calls.append((url, kwargs))
        return sentinel

    fake = types.ModuleType("lro_server.storage.spanner_open")
    fake.open_spanner_store = open_spanner_store  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "lro_server.storage.spanner_open", fake)
    clock = FakeClock()
    url = "spanner://projects/p/instances/i/databases/d"

    assert await open_store(url, clock=clock, threads=4) is sentinel
    assert calls == [(url, {"clock": clock, "threads": 4})]


async def test_migrate_store_applies_the_schema_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 'lro.db'}"

    first = await migrate_store(url)
    again = await migrate_store(url)

    assert first and all(statement.strip() for statement in first)
    assert again == []
    with pytest.raises(InvalidArgument):
        await migrate_store("mysql://db")


def _named(n: int) -> OperationRecord:
    from google.longrunning import operations_pb2

    return OperationRecord(
        operation=operations_pb2.Operation(name=f"operations/00000000-0000-4000-8000-{n:012d}")
    )


async def test_the_read_cache_keeps_at_most_its_bound(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "lro.db", FakeClock(), read_cache_entries=3)
    try:
        created = [(await store.create(_named(n)))[0] for n in range(5)]
        for record in created:
            assert await store.get(record.name) == record
        assert len(store.read_cache) == 3
        for record in created:  # evicted or kept, every read is still right
            assert await store.get(record.name) == record
        assert len(store.read_cache) == 3
    finally:
        await store.close()


async def test_a_store_without_read_cache_keeps_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "lro.db", FakeClock(), read_cache_entries=0)
    try:
        created, _ = await store.create(_named(1))
        assert await store.get(created.name) == created
        assert len(store.read_cache) == 0
    finally:
        await store.close()


async def test_a_cached_read_is_dropped_when_another_connection_writes(tmp_path: Path) -> None:
    # Written with plain sqlite3, as a process running other code would: only the file's
    # data_version tells the store.
    store = SqliteStore(tmp_path / "lro.db", FakeClock())
    try:
        created, _ = await store.create(_named(1))
        await store.get(created.name)
        assert len(store.read_cache) == 1
        _write_elsewhere(tmp_path / "lro.db")

        assert (await store.get(created.name)).state == "ELSEWHERE"
    finally:
        await store.close()


async def test_reads_with_no_commit_in_between_make_no_system_call(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "lro.db", FakeClock())
    try:
        created, _ = await store.create(_named(1))
        assert store.data_version.watching
        await store.get(created.name)
        checks = store.data_version.checks
        for _ in range(50):
            assert await store.get(created.name) == created
        assert store.data_version.checks == checks  # the wal-index header did not move
    finally:
        await store.close()


async def test_own_commits_are_asked_about_once_and_keep_other_cached_records(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "lro.db", FakeClock())
    try:
        first, _ = await store.create(_named(1))
        second, _ = await store.create(_named(2))
        await store.get(first.name)
        await store.get(second.name)
        checks = store.data_version.checks
        await store.update(dataclasses.replace(first, state="RUNNING"))

        assert (await store.get(first.name)).state == "RUNNING"
        assert await store.get(second.name) == second
        assert store.data_version.checks == checks + 1  # the header moved: SQLite was asked
        assert len(store.read_cache) == 2  # ... and said nobody else wrote: nothing dropped
    finally:
        await store.close()


async def test_records_this_store_writes_are_read_back_from_the_cache(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "lro.db", FakeClock())
    try:
        first, _ = await store.create(_named(2))
        await store.get(first.name)  # the cache is filled from here on
        created, _ = await store.create(_named(1))
        assert await store.get(created.name) is created  # no SELECT: the record it wrote
        updated = await store.update(dataclasses.replace(created, state="RUNNING"))
        assert await store.get(created.name) is updated
        (batched,) = await store.update_many([dataclasses.replace(updated, state="AGAIN")])
        assert isinstance(batched, OperationRecord)
        assert await store.get(created.name) is batched
        _write_elsewhere(tmp_path / "lro.db")
        assert (await store.get(created.name)).state == "ELSEWHERE"
    finally:
        await store.close()


async def test_every_read_matches_the_file_while_another_connection_writes(
    tmp_path: Path,
) -> None:
    # Reads, own writes and another connection's commits interleaved at random: every read
    # returns what the file holds at that moment.
    rng = random.Random(7)
    store = SqliteStore(tmp_path / "lro.db", FakeClock())
    other = sqlite3.connect(tmp_path / "lro.db", isolation_level=None)
    try:
        names = [(await store.create(_named(n)))[0].name for n in range(5)]
        for step in range(300):
            name = rng.choice(names)
            action = rng.random()
            if action < 0.25:
                other.execute(f"UPDATE {TABLE} SET state = ? WHERE name = ?", (f"o{step}", name))
            elif action < 0.4:
                record = await store.get(name)
                await store.update(dataclasses.replace(record, state=f"s{step}"))
            else:
                (truth,) = other.execute(
                    f"SELECT state FROM {TABLE} WHERE name = ?", (name,)
                ).fetchone()
                assert (await store.get(name)).state == truth, f"step {step}"
    finally:
        other.close()
        await store.close()


async def test_cached_answers_what_was_read_and_only_while_the_file_holds_it(
    tmp_path: Path,
) -> None:
    # Reads, own writes and another connection's commits interleaved at random: cached()
    # answers from memory (the same record get returned), and never what the file no
    # longer holds.
    rng = random.Random(11)
    store = SqliteStore(tmp_path / "lro.db", FakeClock())
    other = sqlite3.connect(tmp_path / "lro.db", isolation_level=None)
    try:
        names = [(await store.create(_named(n)))[0].name for n in range(5)]
        assert store.cached(names[0]) is None  # never read: nothing to answer from
        hits = 0
        for step in range(300):
            name = rng.choice(names)
            action = rng.random()
            if action < 0.15:
                other.execute(f"UPDATE {TABLE} SET state = ? WHERE name = ?", (f"o{step}", name))
            elif action < 0.25:
                record = await store.get(name)
                await store.update(dataclasses.replace(record, state=f"s{step}"))
            elif action < 0.5:
                await store.get(name)
            else:
                (truth,) = other.execute(
                    f"SELECT state FROM {TABLE} WHERE name = ?", (name,)
                ).fetchone()
                hit = store.cached(name)
                if hit is not None:
                    hits += 1
                    assert hit.state == truth, f"step {step}"
                    assert await store.get(name) is hit  # the very record get hands out
        assert hits > 10  # the path is taken, not only skipped
    finally:
        other.close()
        await store.close()


async def test_a_closed_store_answers_nothing_from_memory(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "lro.db", FakeClock())
    created, _ = await store.create(_named(1))
    await store.get(created.name)
    assert store.cached(created.name) is not None
    await store.close()
    assert store.cached(created.name) is None
    with pytest.raises(Unavailable):
        await store.get(created.name)


async def test_an_in_memory_store_asks_sqlite_every_time(tmp_path: Path) -> None:
    store = SqliteStore(":memory:", FakeClock())
    try:
        created, _ = await store.create(_named(1))
        assert not store.data_version.watching
        before = store.data_version.checks
        assert await store.get(created.name) == created
        assert await store.get(created.name) == created
        assert store.data_version.checks == before + 2
    finally:
        await store.close()


async def test_a_version_1_file_is_migrated_and_keeps_its_operations(tmp_path: Path) -> None:
    path = tmp_path / "lro.db"
    with sqlite3.connect(path, isolation_level=None) as conn:
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    first = SqliteStore(path, FakeClock())
    created, _ = await first.create(_record())
    await first.close()
    with sqlite3.connect(path, isolation_level=None) as conn:  # back to version 1
        conn.execute(f"DROP INDEX {TABLE}_unfinished_by_create")
        conn.execute(f"DROP INDEX {TABLE}_unfinished_by_owner_create")
        conn.execute(f"DROP INDEX {TABLE}_done_by_update")
        conn.execute("DROP TABLE operation_labels")
        for column in ("job_id", "run_id", "cluster_id", "warehouse_id", "pipeline_id"):
            conn.execute(f"DROP INDEX {TABLE}_by_{column}")
            conn.execute(f"ALTER TABLE {TABLE} DROP COLUMN {column}")
        conn.execute("PRAGMA user_version = 1")
    conn.close()

    store = SqliteStore(path, FakeClock())
    try:
        assert store.schema_changes == [s for step in MIGRATIONS[1:] for s in step]
        assert await store.get(created.name) == created
    finally:
        await store.close()


@pytest.mark.parametrize("owner", [None, "alice"])
async def test_listing_unfinished_operations_walks_only_those(
    tmp_path: Path, owner: str | None
) -> None:
    # done = false must not scan every operation ever stored (the stalled-chain sweep
    # runs it every few seconds): the partial index of unfinished operations serves it,
    # in order, without a sort.
    store = SqliteStore(tmp_path / "lro.db", FakeClock())
    await store.close()
    query = ListQuery(
        filter=parse('done = false AND metadata.@type = "lro.databricks.v1.RunMetadata"'),
        owner=owner,
        after=None,
        limit=10,
    )
    sql, params = list_query(query)
    with sqlite3.connect(tmp_path / "lro.db") as conn:
        plan = " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    conn.close()
    index = "unfinished_by_owner_create" if owner else "unfinished_by_create"
    assert f"USING INDEX {TABLE}_{index}" in plan
    assert "TEMP B-TREE" not in plan


async def test_a_commit_by_another_process_is_seen_by_the_next_read(tmp_path: Path) -> None:
    # The wal-index header is shared memory between processes, not only connections.
    store = SqliteStore(tmp_path / "lro.db", FakeClock())
    try:
        created, _ = await store.create(_named(1))
        assert (await store.get(created.name)).state == ""  # cached now
        script = (
            "import sqlite3, sys\n"
            "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            f"conn.execute(\"UPDATE {TABLE} SET state = 'OTHER PROCESS'\")\n"
        )
        other = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, str(tmp_path / "lro.db")
        )
        assert await other.wait() == 0

        assert (await store.get(created.name)).state == "OTHER PROCESS"
    finally:
        await store.close()


def _write_elsewhere(path: Path) -> None:
    """Change every record's state with plain sqlite3, as a process running other code
    would: only the file's data_version tells the store."""
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute(f"UPDATE {TABLE} SET state = 'ELSEWHERE'")
    conn.close()
