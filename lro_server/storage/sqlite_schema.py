"""The SQL of the SQLite store: schema, migrations, statements, and records as rows.

Each entry of :data:`MIGRATIONS` moves a database from version ``i`` to ``i + 1``; a new
column or index is a new entry, never an edit of an old one, so every existing file can be
brought forward by replaying the tail of the list.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from google.longrunning import operations_pb2

from lro_server.core.errors import FailedPrecondition
from lro_server.core.filter_ast import label_equality, without
from lro_server.core.labels import KEY_COLUMNS
from lro_server.core.record import OperationRecord
from lro_server.core.store import ListQuery
from lro_server.core.work_column import work_fields
from lro_server.storage.filter_sql import compile_filter
from lro_server.storage.sql import UPDATE_RETURNS, Dialect, SqlFilter, keyset_condition

#: Name of the one table.
TABLE = "operations"

_V1 = (
    # A rowid table, not WITHOUT ROWID: operations and checkpoints may be megabytes, and
    # WITHOUT ROWID tables are meant for rows far smaller than a page.
    f"""
    CREATE TABLE IF NOT EXISTS {TABLE} (
        name            TEXT    NOT NULL PRIMARY KEY,
        operation       BLOB    NOT NULL,   -- serialized google.longrunning.Operation
        version         INTEGER NOT NULL,   -- compare-and-set version, 1 after create
        create_time_us  INTEGER NOT NULL,
        update_time_us  INTEGER NOT NULL,
        done            INTEGER NOT NULL,   -- 0 or 1, copied from operation.done
        metadata_type   TEXT    NOT NULL,   -- full message name of operation.metadata
        error_code      INTEGER,            -- operation.error.code, NULL without an error
        state           TEXT    NOT NULL,
        owner           TEXT    NOT NULL,
        request_id      TEXT    NOT NULL,
        method          TEXT    NOT NULL,
        work            TEXT    NOT NULL,   -- JSON object
        checkpoint      BLOB,
        lease_holder    TEXT    NOT NULL,
        lease_expire_us INTEGER NOT NULL
    )
    """,
    # Listing for administrators (every owner) ...
    f"""
    CREATE INDEX IF NOT EXISTS {TABLE}_by_create
        ON {TABLE} (create_time_us DESC, name DESC)
    """,
    # ... and for one owner, the common case once authentication is on.
    f"""
    CREATE INDEX IF NOT EXISTS {TABLE}_by_owner_create
        ON {TABLE} (owner, create_time_us DESC, name DESC)
    """,
    # AIP-155: one operation per (owner, request_id); requests without an id never collide.
    f"""
    CREATE UNIQUE INDEX IF NOT EXISTS {TABLE}_by_request
        ON {TABLE} (owner, request_id) WHERE request_id != ''
    """,
    # Claiming reads only unfinished operations, which stay few while done ones pile up:
    # expired leases by expiry (to take them) ...
    f"""
    CREATE INDEX IF NOT EXISTS {TABLE}_claimable
        ON {TABLE} (lease_expire_us) WHERE done = 0
    """,
    # ... and one holder's leases (to renew them).
    f"""
    CREATE INDEX IF NOT EXISTS {TABLE}_held
        ON {TABLE} (lease_holder, lease_expire_us) WHERE done = 0
    """,
)

# Listing unfinished operations (``done = false``: clients looking for their running work,
# and the server's own sweep for stalled chains) walks only those, newest first, instead of
# every stored operation (50 ms per sweep with 100,000 done ones). SQLite uses a partial
# index for a bound ``done = :p0`` too: it plans with the bound values.
_V2 = (
    f"""
    CREATE INDEX IF NOT EXISTS {TABLE}_unfinished_by_create
        ON {TABLE} (create_time_us DESC, name DESC) WHERE done = 0
    """,
    f"""
    CREATE INDEX IF NOT EXISTS {TABLE}_unfinished_by_owner_create
        ON {TABLE} (owner, create_time_us DESC, name DESC) WHERE done = 0
    """,
)

# --- Databricks ids and labels (filters metadata.job_id ..., labels.<key>) ---
# The ids an operation is found by, one nullable column each (NULL: none), each with an
# index in listing order, so "metadata.run_id = 42" reads a page of that index. Labels get
# a table of their own, one row per (operation, key), with the operation's creation time
# copied in: "labels.team = 'x'" walks (key, value, time) newest first and stops at the
# page's end. Labels never change after the start, so only create and delete write it.
# Done operations are purged by age through the partial index of done ones.
_KEY_COLUMNS = (
    ("job_id", "INTEGER"),
    ("run_id", "INTEGER"),
    ("cluster_id", "TEXT"),
    ("warehouse_id", "TEXT"),
    ("pipeline_id", "TEXT"),
)
_V3_DATABRICKS_KEYS_AND_LABELS = (
    *(f"ALTER TABLE {TABLE} ADD COLUMN {name} {kind}" for name, kind in _KEY_COLUMNS),
    *(
        f"""
    CREATE INDEX IF NOT EXISTS {TABLE}_by_{name}
        ON {TABLE} ({name}, create_time_us DESC, name DESC) WHERE {name} IS NOT NULL
    """
        for name, _ in _KEY_COLUMNS
    ),
    """
    CREATE TABLE IF NOT EXISTS operation_labels (
        op_name           TEXT    NOT NULL,
        label_key         TEXT    NOT NULL,
        label_value       TEXT    NOT NULL,
        op_create_time_us INTEGER NOT NULL,
        PRIMARY KEY (op_name, label_key)
    )
    """,
    """
    CREATE INDEX IF NOT EXISTS operation_labels_by_value
        ON operation_labels (label_key, label_value, op_create_time_us DESC, op_name DESC)
    """,
    f"""
    CREATE INDEX IF NOT EXISTS {TABLE}_done_by_update
        ON {TABLE} (update_time_us, name) WHERE done = 1
    """,
)

#: Journal events of durable methods: one row per event beside its operation, appended in
#: the transaction of the operation's compare-and-set, so a new event costs its own bytes and
#: never a rewrite of the journal. WITHOUT ROWID: rows are small and read by (name, seq).
JOURNAL_TABLE = "journal"
_V4_JOURNAL = (
    f"""
    CREATE TABLE IF NOT EXISTS {JOURNAL_TABLE} (
        name TEXT    NOT NULL,
        seq  INTEGER NOT NULL,
        data TEXT    NOT NULL,   -- one event, a JSON object
        PRIMARY KEY (name, seq)
    ) WITHOUT ROWID
    """,
)

#: MIGRATIONS[i] brings a database from user_version i to i + 1.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    _V1,
    _V2,
    _V3_DATABRICKS_KEYS_AND_LABELS,
    _V4_JOURNAL,
)

#: The user_version of a database this code fully understands.
SCHEMA_VERSION = len(MIGRATIONS)

# --- the statements SqliteStore runs (named parameters, never spliced values) ---

#: The columns a record is read from, in the order :func:`record_from_row` unpacks them.
COLUMNS = (
    "name, operation, version, create_time_us, update_time_us, owner, request_id, method, "
    "state, work, checkpoint, lease_holder, lease_expire_us"
)
GET = f"SELECT {COLUMNS} FROM {TABLE} WHERE name = ?"
BY_REQUEST = f"SELECT {COLUMNS} FROM {TABLE} WHERE owner = ? AND request_id = ?"
INSERT = f"""
INSERT INTO {TABLE} (
    name, operation, version, create_time_us, update_time_us, done, metadata_type,
    error_code, state, owner, request_id, method, work, checkpoint, lease_holder,
    lease_expire_us, job_id, run_id, cluster_id, warehouse_id, pipeline_id
) VALUES (
    :name, :operation, 1, :now, :now, :done, :metadata_type,
    :error_code, :state, :owner, :request_id, :method, :work, :checkpoint, :lease_holder,
    :lease_expire_us, :job_id, :run_id, :cluster_id, :warehouse_id, :pipeline_id
)"""
#: One row per label of a new operation; the labels travel as one JSON object.
INSERT_LABELS = """
INSERT INTO operation_labels (op_name, label_key, label_value, op_create_time_us)
SELECT :name, key, value, :now FROM json_each(:labels)"""
DELETE_LABELS = "DELETE FROM operation_labels WHERE op_name = ?"
# "AND done = 0" makes a done record final inside the same atomic statement.
UPDATE = f"""
UPDATE {TABLE} SET
    operation = :operation, version = version + 1,
    update_time_us = MAX(:now, update_time_us + 1),
    done = :done, metadata_type = :metadata_type, error_code = :error_code, state = :state,
    work = :work, checkpoint = :checkpoint, job_id = :job_id, run_id = :run_id,
    cluster_id = :cluster_id, warehouse_id = :warehouse_id, pipeline_id = :pipeline_id
WHERE name = :name AND version = :version AND done = 0
RETURNING {", ".join(UPDATE_RETURNS)}"""
STATUS = f"SELECT version, done FROM {TABLE} WHERE name = ?"
#: :data:`UPDATE` of a running operation's journal append (a durable method's commit): it
#: sets only the columns such a write changes, and matches only while the others already
#: hold what :data:`UPDATE` would write (else the store runs :data:`UPDATE`). Indexes on
#: columns it does not set are left alone: about half the statement's cost.
UPDATE_UNINDEXED = f"""
UPDATE {TABLE} SET
    operation = :operation, version = version + 1,
    update_time_us = MAX(:now, update_time_us + 1),
    state = :state, work = :work, checkpoint = :checkpoint
WHERE name = :name AND version = :version AND done = 0 AND :done = 0
    AND metadata_type IS :metadata_type AND error_code IS :error_code
    AND {" AND ".join(f"{column} IS :{column}" for column in KEY_COLUMNS)}
RETURNING {", ".join(UPDATE_RETURNS)}"""


def list_query(query: ListQuery) -> tuple[str, dict[str, Any]]:
    """The listing query for ``query`` (``limit`` > 0) and its parameters, newest first.

    SQLite picks the index: by creation time, for one owner, by a Databricks id, or
    (``done = false``) the partial ones of unfinished operations. A filter requiring a
    label's value reads the label index first (CROSS JOIN fixes that order), newest
    first, and stops at the page's end.
    """
    where = SqlFilter(Dialect.SQLITE.true)
    if query.owner is not None:
        where = where.and_(SqlFilter("owner = :owner", {"owner": query.owner}))
    label = label_equality(query.filter)
    # The label index guarantees the label's term: only the rest is tested per row.
    rest = query.filter if label is None else without(query.filter, label)
    if rest is not None:
        where = where.and_(compile_filter(rest, Dialect.SQLITE))
    if label is None:
        if query.after is not None:
            where = where.and_(keyset_condition(query.after, Dialect.SQLITE))
        sql = (
            f"SELECT {COLUMNS} FROM {TABLE} WHERE {where.sql}"
            " ORDER BY create_time_us DESC, name DESC LIMIT :limit"
        )
        return sql, {**where.params, "limit": query.limit}
    where = where.and_(
        SqlFilter(
            "l.label_key = :label_key AND l.label_value = :label_value",
            {"label_key": label.field.label, "label_value": label.value},
        )
    )
    if query.after is not None:
        where = where.and_(
            keyset_condition(
                query.after,
                Dialect.SQLITE,
                time_column="l.op_create_time_us",
                name_column="l.op_name",
            )
        )
    columns = ", ".join(f"{TABLE}.{c.strip()}" for c in COLUMNS.split(","))
    sql = (
        f"SELECT {columns} FROM operation_labels AS l CROSS JOIN {TABLE}"
        f" ON {TABLE}.name = l.op_name WHERE {where.sql}"
        " ORDER BY l.op_create_time_us DESC, l.op_name DESC LIMIT :limit"
    )
    return sql, {**where.params, "limit": query.limit}


# Claiming is two statements in one transaction, each walking a small partial index of
# unfinished operations in lease order (no sort): first the holder renews its own leases,
# so that a flood of expired operations cannot make it miss a renewal (and drop work it is
# in the middle of) when ``limit`` is small; then it takes expired or never-leased ones.
RENEW = f"""
UPDATE {TABLE} SET lease_expire_us = :expire
WHERE name IN (
    SELECT name FROM {TABLE} WHERE done = 0 AND lease_holder = :holder
    ORDER BY lease_expire_us LIMIT :limit
)
RETURNING {COLUMNS}"""
# Renewed leases now end after :now, so this cannot pick one of them a second time.
TAKE = f"""
UPDATE {TABLE} SET lease_holder = :holder, lease_expire_us = :expire
WHERE name IN (
    SELECT name FROM {TABLE} WHERE done = 0 AND lease_expire_us <= :now
    ORDER BY lease_expire_us LIMIT :limit
)
RETURNING {COLUMNS}"""
#: Unfinished operations by live lease holder ('' for nobody), through the partial index
#: of unfinished operations' leases.
HOLDERS = f"""
SELECT CASE WHEN lease_expire_us > :now THEN lease_holder ELSE '' END AS holder, count(*)
FROM {TABLE} WHERE done = 0 GROUP BY holder"""
DELETE = f"DELETE FROM {TABLE} WHERE name = ?"
#: Done operations that last changed before :before, oldest first, after a cursor.
EXPIRED = f"""
SELECT {COLUMNS} FROM {TABLE}
WHERE done = 1 AND update_time_us < :before
    AND (update_time_us > :after_us OR (update_time_us = :after_us AND name > :after_name))
ORDER BY update_time_us, name LIMIT :limit"""
JOURNAL_INSERT = f"INSERT INTO {JOURNAL_TABLE} (name, seq, data) VALUES (?, ?, ?)"
# The record is read, not written: the append is conditional on its version.
JOURNAL_APPEND = f"""
INSERT INTO {JOURNAL_TABLE} (name, seq, data)
SELECT name, ?2, ?3 FROM {TABLE} WHERE name = ?1 AND version = ?4 AND done = 0"""
JOURNAL_READ = f"SELECT seq, data FROM {JOURNAL_TABLE} WHERE name = ? AND seq > ? ORDER BY seq"
JOURNAL_DELETE = f"DELETE FROM {JOURNAL_TABLE} WHERE name = ?"
# Names travel as one JSON array: one statement however many names, no variable limit.
RELEASE = f"""
UPDATE {TABLE} SET lease_holder = '', lease_expire_us = 0
WHERE lease_holder = :holder AND name IN (SELECT value FROM json_each(:names))"""
PING = f"SELECT 1 FROM {TABLE} LIMIT 1"


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Bring the database behind ``conn`` to :data:`SCHEMA_VERSION`.

    Returns the statements applied (empty when the schema was current already).

    Runs in one ``BEGIN IMMEDIATE`` transaction, so two processes opening the same new file
    at once do not both migrate it. ``conn`` must be in autocommit mode
    (``isolation_level=None``). Raises FailedPrecondition for a database written by a newer
    schema, which this code must not touch.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        (found,) = conn.execute("PRAGMA user_version").fetchone()
        if found > SCHEMA_VERSION:
            raise FailedPrecondition(
                f"the SQLite store has schema version {found}, newer than this server's "
                f"{SCHEMA_VERSION}; upgrade lro-server",
                reason="SCHEMA_TOO_NEW",
            )
        applied = [statement for step in MIGRATIONS[found:] for statement in step]
        for statement in applied:
            conn.execute(statement)
        if found != SCHEMA_VERSION:
            # PRAGMA takes no bound parameters; the value is our own integer.
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    return applied


# --- records to rows and back ---


def row_params(record: OperationRecord, work: str) -> dict[str, Any]:
    """Parameters of the columns create and update both write (see :data:`UPDATE`)."""
    return {
        "name": record.name,
        "operation": record.operation.SerializeToString(),
        "done": int(record.done),
        "metadata_type": record.metadata_type,
        "error_code": record.error_code,
        "state": record.state,
        "work": work,
        "checkpoint": record.checkpoint,
        **{column: record.keys.column(column) for column in KEY_COLUMNS},
    }


def insert_params(record: OperationRecord, work: str, now: int) -> dict[str, Any]:
    """Parameters of :data:`INSERT`: :func:`row_params` plus the columns set once."""
    return {
        **row_params(record, work),
        "now": now,
        "owner": record.owner,
        "request_id": record.request_id,
        "method": record.method,
        "lease_holder": record.lease_holder,
        "lease_expire_us": record.lease_expire_us,
    }


def record_from_row(row: tuple[Any, ...]) -> OperationRecord:
    """Build a record from a row of :data:`COLUMNS`."""
    (_, blob, version, create_us, update_us, owner, request_id, method, state, work,
     checkpoint, holder, expire_us) = row  # fmt: skip
    return OperationRecord(
        operation=operations_pb2.Operation.FromString(blob),
        version=version,
        create_time_us=create_us,
        update_time_us=update_us,
        owner=owner,
        request_id=request_id,
        method=method,
        state=state,
        **work_fields(work),
        checkpoint=checkpoint,
        lease_holder=holder,
        lease_expire_us=expire_us,
    )
