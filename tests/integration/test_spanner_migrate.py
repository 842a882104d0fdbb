"""`migrate` against the real Cloud Spanner emulator: creation, idempotency, upgrades.

Store behaviour is proven by the conformance suites (backend "spanner"); this module
covers what only Spanner has: the DDL file, the proto bundle, the row deletion policy.
"""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
from google.api_core import exceptions as gexc
from google.cloud import spanner
from google.longrunning import operations_pb2

from lro_server.core.errors import Unavailable
from lro_server.core.filter import parse
from lro_server.core.record import OperationRecord
from lro_server.core.store import ListQuery
from lro_server.storage.spanner_client import parse_spanner_url
from lro_server.storage.spanner_open import open_spanner_store
from lro_server.storage.spanner_schema import (
    ddl_statements,
    migrate,
    plan_migration,
    proto_descriptors,
)
from lro_server.testing.spanner_emulator import SpannerEmulator

pytestmark = pytest.mark.spanner


def _database(url: str) -> spanner.Database:
    parsed = parse_spanner_url(url)
    client = spanner.Client(project=parsed.project)
    return client.instance(parsed.instance).database(parsed.database)


def _live_ddl(url: str) -> list[str]:
    database = _database(url)
    database.reload()
    return list(database.ddl_statements)


def _query(url: str, sql: str) -> list[list[object]]:
    with _database(url).snapshot() as snapshot:
        return [list(row) for row in snapshot.execute_sql(sql)]


async def test_migrate_creates_the_database_then_has_nothing_left_to_do(
    spanner_new_database_url: str,
) -> None:
    first = await migrate(spanner_new_database_url)
    second = await migrate(spanner_new_database_url)

    assert first == ddl_statements()
    assert second == []


async def test_the_live_schema_is_the_ddl_file(spanner_database_url: str) -> None:
    live = _live_ddl(spanner_database_url)

    # Spanner prints DDL in its own layout; what matters is that nothing is missing.
    assert plan_migration(ddl_statements(), live) == []
    assert len(live) == len(ddl_statements())


async def test_the_proto_bundle_holds_every_type_the_operation_column_needs(
    spanner_database_url: str,
) -> None:
    bundle = next(s for s in _live_ddl(spanner_database_url) if "PROTO BUNDLE" in s)

    for type_name in ("google.longrunning.Operation", "google.rpc.Status", "google.protobuf.Any"):
        assert type_name in bundle
    columns = _query(
        spanner_database_url,
        "SELECT COLUMN_NAME, SPANNER_TYPE FROM INFORMATION_SCHEMA.COLUMNS"
        " WHERE TABLE_NAME = 'Operations' AND COLUMN_NAME = 'Operation'",
    )
    assert len(columns) == 1
    assert "google.longrunning.Operation" in str(columns[0][1])


async def test_the_row_deletion_policy_follows_retention_days(
    spanner_new_database_url: str,
) -> None:
    policy_sql = (
        "SELECT ROW_DELETION_POLICY_EXPRESSION FROM INFORMATION_SCHEMA.TABLES"
        " WHERE TABLE_SCHEMA = '' AND TABLE_NAME = 'Operations'"
    )
    await migrate(spanner_new_database_url, retention_days=30)
    assert _query(spanner_new_database_url, policy_sql) == [
        ["OLDER_THAN(done_time, INTERVAL 30 DAY)"]
    ]

    applied = await migrate(spanner_new_database_url, retention_days=7)

    assert applied == [
        "ALTER TABLE Operations REPLACE ROW DELETION POLICY (OLDER_THAN(done_time, INTERVAL 7 DAY))"
    ]
    assert _query(spanner_new_database_url, policy_sql) == [
        ["OLDER_THAN(done_time, INTERVAL 7 DAY)"]
    ]
    assert await migrate(spanner_new_database_url, retention_days=7) == []


async def test_migrate_upgrades_an_older_schema_in_place(
    spanner_emulator: SpannerEmulator, spanner_new_database_url: str
) -> None:
    # An "older release": no error_code column, no owner index, no row deletion policy,
    # no journal table. (A column added later must be nullable or have a DEFAULT: Spanner
    # cannot add a NOT NULL column without one to a table that has rows.)
    older = []
    journal_table = ""
    for statement in ddl_statements():
        if statement.startswith("CREATE INDEX OperationsByOwnerCreateTime"):
            continue
        if "OperationLabels" in statement:  # the label table came later too
            continue
        if statement.startswith("CREATE TABLE OperationJournal"):
            journal_table = statement
            continue
        if statement.startswith("CREATE TABLE Operations"):
            table = statement.replace("  error_code INT64,\n", "")
            older.append(table.split(") PRIMARY KEY (key)")[0] + ") PRIMARY KEY (key)")
        else:
            older.append(statement)
    parsed = parse_spanner_url(spanner_new_database_url)
    database = (
        spanner.Client(project=parsed.project)
        .instance(parsed.instance)
        .database(parsed.database, ddl_statements=older, proto_descriptors=proto_descriptors())
    )
    database.create().result(60)

    applied = await migrate(spanner_new_database_url)

    assert applied == [
        "ALTER TABLE Operations ADD COLUMN error_code INT64",
        "ALTER TABLE Operations ADD ROW DELETION POLICY (OLDER_THAN(done_time, INTERVAL 30 DAY))",
        "CREATE INDEX OperationsByOwnerCreateTime ON Operations (owner, create_time_us DESC, "
        "key DESC)",
        *(s for s in ddl_statements() if "OperationLabels" in s),
        journal_table,
    ]
    assert journal_table.startswith("CREATE TABLE OperationJournal")
    assert await migrate(spanner_new_database_url) == []


async def test_a_store_on_a_missing_database_says_to_run_migrate(
    spanner_new_database_url: str,
) -> None:
    with pytest.raises(Unavailable, match="lro-server migrate --store spanner://"):
        await open_spanner_store(spanner_new_database_url)


async def test_create_schema_migrates_before_opening(spanner_new_database_url: str) -> None:
    store = await open_spanner_store(spanner_new_database_url, create_schema=True)
    try:
        await store.ping()
    finally:
        await store.close()


async def test_a_dropped_table_turns_into_unavailable_not_a_crash(
    spanner_database_url: str,
) -> None:
    store = await open_spanner_store(spanner_database_url)
    try:
        database = _database(spanner_database_url)
        drops = [f"DROP INDEX {name}" for name in _index_names(spanner_database_url)]
        tables = [
            "DROP TABLE OperationLabels",
            "DROP TABLE OperationJournal",
            "DROP TABLE Operations",
        ]
        database.update_ddl([*drops, *tables]).result(60)

        with pytest.raises(Unavailable, match="migrate"):
            await store.get("operations/00000000-0000-4000-8000-000000000000")
    finally:
        await store.close()


def _index_names(url: str) -> list[str]:
    rows = _query(
        url,
        "SELECT INDEX_NAME FROM INFORMATION_SCHEMA.INDEXES"
        " WHERE TABLE_NAME IN ('Operations', 'OperationLabels') AND INDEX_TYPE = 'INDEX'",
    )
    return [str(row[0]) for row in rows]


async def test_migrate_creates_a_missing_instance_on_the_emulator(
    spanner_emulator: SpannerEmulator,
) -> None:
    # On Cloud Spanner a missing instance is an error (terraform creates it); on the
    # emulator migrate creates it, so local setup is one command.
    url = spanner_emulator.database_url().replace("/instances/lro-test/", "/instances/other-inst/")
    try:
        assert await migrate(url) == ddl_statements()
    finally:
        database = _database(url)
        database.drop()
        with contextlib.suppress(gexc.NotFound):
            database._instance.delete()


async def test_migrate_indexes_the_unfinished_operations_of_an_existing_table(
    spanner_emulator: SpannerEmulator, spanner_new_database_url: str
) -> None:
    # The release before kept no index of unfinished operations: listing done = false read
    # every operation ever kept. Upgrading a table with rows backfills the generated column,
    # and listings then read the new index and find exactly the running operations.
    column = "unfinished_create_time_us INT64 AS (IF(done, NULL, create_time_us)) STORED"
    older = [
        s.replace(f"  {column},\n", "")
        for s in ddl_statements()
        if "INDEX OperationsUnfinished" not in s
    ]
    parsed = parse_spanner_url(spanner_new_database_url)
    database = (
        spanner.Client(project=parsed.project)
        .instance(parsed.instance)
        .database(parsed.database, ddl_statements=older, proto_descriptors=proto_descriptors())
    )
    database.create().result(60)
    store = await open_spanner_store(spanner_new_database_url)
    try:
        created = [(await store.create(_record(n)))[0] for n in range(4)]
        for record in created[:2]:
            finished = operations_pb2.Operation(name=record.name, done=True)
            await store.update(dataclasses.replace(record, operation=finished))

        applied = await migrate(spanner_new_database_url)

        assert applied == [
            f"ALTER TABLE Operations ADD COLUMN {column}",
            *[s for s in ddl_statements() if "INDEX OperationsUnfinished" in s],
        ]
        for owner in (None, ""):
            query = ListQuery(filter=parse("done = false"), owner=owner, after=None, limit=10)
            listed = await store.list(query)
            assert [r.name for r in listed] == [r.name for r in reversed(created[2:])]
    finally:
        await store.close()


def _record(n: int) -> OperationRecord:
    return OperationRecord(
        operation=operations_pb2.Operation(name=f"operations/00000000-0000-4000-8000-{n:012d}")
    )
