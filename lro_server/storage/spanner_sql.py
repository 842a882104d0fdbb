"""The SQL the Spanner store runs, and the mapping between its rows and records.

Kept apart from :mod:`lro_server.storage.spanner` (which runs it) so that each reads on
its own. Column names follow the schema in ``spanner_schema.sql``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from google.cloud import spanner
from google.cloud.spanner_v1 import param_types
from google.longrunning import operations_pb2

from lro_server.core.filter_ast import (
    Compare,
    key_equality,
    requires_unfinished,
)
from lro_server.core.labels import KEY_COLUMNS
from lro_server.core.pagetoken import Cursor
from lro_server.core.record import OperationRecord
from lro_server.core.store import ListQuery
from lro_server.core.work_column import work_fields
from lro_server.storage.filter_sql import compile_filter
from lro_server.storage.spanner_schema import TABLE
from lro_server.storage.sql import UPDATE_RETURNS, Dialect, SqlFilter, keyset_condition

# google-cloud-spanner is only partly annotated; these names are used as untyped.
_ProtoMessage: Any = param_types.ProtoMessage
_Array: Any = param_types.Array

# The emulator refuses queries through NULL_FILTERED indexes unless told that production
# Spanner accepts them; production ignores hints qualified with "spanner_emulator.".
# Every such query below filters the indexed columns with IS NOT NULL or "=", which is
# what production needs to use the index.
_NULL_FILTERED_OK = "spanner_emulator.disable_query_null_filtered_index_check=true"

#: The columns a record is built from, in the order record_from_row() unpacks them. The
#: operation name comes from the Operation message itself, so "key" need not be read.
COLUMNS = (
    "Operation",
    "version",
    "create_time_us",
    "update_time_us",
    "owner",
    "request_id",
    "method",
    "state",
    "work",
    "Checkpoint",
    "lease_holder",
    "lease_expire_us",
)
#: COLUMNS as a select list.
SELECT_COLUMNS = ", ".join(COLUMNS)
#: What create writes ("key" and "done" are generated from Operation).
INSERT_COLUMNS = (
    "Operation",
    "version",
    "create_time_us",
    "update_time_us",
    "metadata_type",
    "error_code",
    "state",
    "owner",
    "request_id",
    "method",
    "work",
    "Checkpoint",
    "lease_holder",
    "lease_expire_us",
    "done_time",
    *KEY_COLUMNS,
)
#: What create writes for each label of a new operation.
LABEL_COLUMNS = ("key", "label_key", "label_value", "create_time_us")
#: The owner's record with a request id (AIP-155 dedupe).
BY_REQUEST = (
    f"SELECT {SELECT_COLUMNS}"
    f" FROM {TABLE}@{{FORCE_INDEX=OperationsByRequestId, {_NULL_FILTERED_OK}}}"
    " WHERE owner = @owner AND request_id = @request_id"
)
#: Compare-and-set; ``{done_time}`` is filled with the done_time assignment or nothing.
UPDATE = f"""
UPDATE {TABLE} SET
    Operation = @operation, version = version + 1,
    update_time_us = GREATEST(@now, update_time_us + 1),
    metadata_type = @metadata_type, error_code = @error_code, state = @state,
    work = @work, Checkpoint = @checkpoint, job_id = @job_id, run_id = @run_id,
    cluster_id = @cluster_id, warehouse_id = @warehouse_id, pipeline_id = @pipeline_id{{done_time}}
WHERE key = @name AND version = @version AND NOT done
THEN RETURN {", ".join(UPDATE_RETURNS)}"""
#: Parameter types of UPDATE (some values may be NULL, so they cannot be inferred).
UPDATE_TYPES = {
    "operation": _ProtoMessage(operations_pb2.Operation()),
    "now": param_types.INT64,
    "metadata_type": param_types.STRING,
    "error_code": param_types.INT64,
    "state": param_types.STRING,
    "work": param_types.STRING,
    "checkpoint": param_types.BYTES,
    "name": param_types.STRING,
    "version": param_types.INT64,
    "job_id": param_types.INT64,
    "run_id": param_types.INT64,
    "cluster_id": param_types.STRING,
    "warehouse_id": param_types.STRING,
    "pipeline_id": param_types.STRING,
}
#: Done operations that last changed before @before, oldest first, after a cursor.
EXPIRED = f"""
SELECT {", ".join(COLUMNS)}
FROM {TABLE}@{{FORCE_INDEX=OperationsDoneByUpdateTime, {_NULL_FILTERED_OK}}}
WHERE done_update_time_us IS NOT NULL AND done_update_time_us < @before
    AND (done_update_time_us > @after_us OR (done_update_time_us = @after_us AND key > @after_name))
ORDER BY done_update_time_us, key LIMIT @limit"""
#: The journal table (interleaved in Operations: a record's events live beside it and go
#: with it on delete and on the row deletion policy), its columns, and its read.
JOURNAL_TABLE = "OperationJournal"
JOURNAL_COLUMNS = ("key", "seq", "data")
JOURNAL_READ = (
    f"SELECT seq, data FROM {JOURNAL_TABLE} WHERE key = @name AND seq > @after ORDER BY seq"
)


def update_statement(record: OperationRecord, work: str, now: int) -> tuple[str, dict[str, Any]]:
    """The compare-and-set UPDATE of ``record`` and its parameters (types: UPDATE_TYPES)."""
    params = {
        "operation": record.operation,
        "now": now,
        "metadata_type": record.metadata_type,
        "error_code": record.error_code,
        "state": record.state,
        "work": work,
        "checkpoint": encode_bytes(record.checkpoint),
        "name": record.name,
        "version": record.version,
        **{column: record.keys.column(column) for column in KEY_COLUMNS},
    }
    # PENDING_COMMIT_TIMESTAMP() may only stand alone as a value, not inside IF().
    sql = UPDATE.format(done_time=", done_time = PENDING_COMMIT_TIMESTAMP()" if record.done else "")
    return sql, params


#: Delete one record; the row count tells whether it existed.
DELETE = f"DELETE FROM {TABLE} WHERE key = @name"
#: Names of claimable operations. Same order as SQLite: the holder's own leases first,
#: so that a flood of expired operations cannot make it miss a renewal when ``limit`` is
#: small.
CLAIMABLE = f"""
SELECT key FROM {TABLE}@{{FORCE_INDEX=OperationsClaimable, {_NULL_FILTERED_OK}}}
WHERE claimable_expire_us IS NOT NULL
    AND (lease_holder = @holder OR claimable_expire_us <= @now)
ORDER BY lease_holder = @holder DESC, claimable_expire_us, key
LIMIT @limit"""
#: Lease the rows CLAIMABLE found. Two statements, not UPDATE ... WHERE key IN (SELECT
#: ...): the emulator cannot run an UPDATE whose subquery reads the same table. Both run
#: in one transaction, so the rows the SELECT read stay locked until the UPDATE commits.
LEASE = f"""
UPDATE {TABLE} SET lease_holder = @holder, lease_expire_us = @expire
WHERE key IN UNNEST(@keys)
THEN RETURN {SELECT_COLUMNS}"""
#: Unfinished operations by live lease holder ('' for nobody), from the small index of
#: unfinished operations' leases.
HOLDERS = f"""
SELECT IF(claimable_expire_us > @now, lease_holder, '') AS holder, COUNT(*) AS n
FROM {TABLE}@{{FORCE_INDEX=OperationsClaimable, {_NULL_FILTERED_OK}}}
WHERE claimable_expire_us IS NOT NULL
GROUP BY holder"""
#: End a holder's leases on some operations.
RELEASE = f"""
UPDATE {TABLE} SET lease_holder = '', lease_expire_us = 0
WHERE lease_holder = @holder AND key IN UNNEST(@names)"""
#: Cheapest query that proves the table is there.
PING = f"SELECT 1 FROM {TABLE} LIMIT 1"
# The filter compiler and the keyset fragment use "name"; expose "key" under that name.
_LISTED = (
    "SELECT key AS name, done, metadata_type, error_code, unfinished_create_time_us,"
    " job_id, run_id, cluster_id, warehouse_id, pipeline_id, {columns}"
    " FROM {table}@{{FORCE_INDEX={index}, " + _NULL_FILTERED_OK + "}}"
)

#: The index a listing reads when the filter requires one Databricks id, by its column.
_KEY_INDEXES = {
    "job_id": "OperationsByJobId",
    "run_id": "OperationsByRunId",
    "cluster_id": "OperationsByClusterId",
    "warehouse_id": "OperationsByWarehouseId",
    "pipeline_id": "OperationsByPipelineId",
}
#: The index a listing reads, by (requires unfinished operations, one owner).
_LIST_INDEXES = {
    (False, False): "OperationsByCreateTime",
    (False, True): "OperationsByOwnerCreateTime",
    (True, False): "OperationsUnfinishedByCreateTime",
    (True, True): "OperationsUnfinishedByOwnerCreateTime",
}


def list_query(query: ListQuery) -> tuple[str, dict[str, Any]]:
    """The listing query for ``query`` (``limit`` > 0) and its parameters.

    Reads ``OperationsByCreateTime``, or ``OperationsByOwnerCreateTime`` for one owner,
    with the same filter and keyset fragments as SQLite. A filter that requires
    ``done = false`` reads the NULL_FILTERED indexes of unfinished operations instead, so
    its cost follows the running operations, not all those ever kept.
    """
    unfinished = requires_unfinished(query.filter)
    index = _LIST_INDEXES[unfinished, query.owner is not None]
    where = SqlFilter(
        "unfinished_create_time_us IS NOT NULL" if unfinished else Dialect.SPANNER.true
    )
    key = key_equality(query.filter, _KEY_INDEXES)
    if key is not None:  # the id's index: a page of its matches, newest first
        index = _KEY_INDEXES[key.field.column]
        where = SqlFilter(f"{key.field.column} IS NOT NULL")
    if query.owner is not None:
        where = where.and_(SqlFilter("owner = @owner", {"owner": query.owner}))
    if query.filter is not None:
        where = where.and_(compile_filter(query.filter, Dialect.SPANNER))
    if query.after is not None:
        where = where.and_(keyset_condition(query.after, Dialect.SPANNER))
    listed = _LISTED.format(columns=SELECT_COLUMNS, table=TABLE, index=index)
    sql = (
        f"SELECT {SELECT_COLUMNS} FROM ({listed}) WHERE {where.sql}"
        " ORDER BY create_time_us DESC, name DESC LIMIT @limit"
    )
    return sql, {**where.params, "limit": query.limit}


def labeled_candidates(
    label: Compare, after: Cursor | None, batch: int
) -> tuple[str, dict[str, Any]]:
    """The next ``batch`` operations carrying the label's value, newest first, after
    ``after``: (key, create_time_us) rows of the label index alone."""
    where = SqlFilter("label_key = @label_key AND label_value = @label_value")
    if after is not None:
        where = where.and_(
            keyset_condition(
                after, Dialect.SPANNER, time_column="create_time_us", name_column="key"
            )
        )
    sql = (
        "SELECT key, create_time_us FROM OperationLabels@{FORCE_INDEX=OperationLabelsByValue}"
        f" WHERE {where.sql} ORDER BY create_time_us DESC, key DESC LIMIT @batch"
    )
    params = {**where.params, "label_key": label.field.label, "label_value": label.value}
    return sql, {**params, "batch": batch}


def record_from_row(row: Sequence[Any]) -> OperationRecord:
    """Build a record from a row of ``COLUMNS``."""
    (blob, version, create_us, update_us, owner, request_id, method, state, work,
     checkpoint, holder, expire_us) = row  # fmt: skip
    operation = (
        blob
        if isinstance(blob, operations_pb2.Operation)
        else operations_pb2.Operation.FromString(blob)
    )
    return OperationRecord(
        operation=operation,
        version=version,
        create_time_us=create_us,
        update_time_us=update_us,
        owner=owner,
        request_id=request_id or "",
        method=method,
        state=state,
        **work_fields(work),
        checkpoint=None if checkpoint is None else base64.b64decode(checkpoint),
        lease_holder=holder,
        lease_expire_us=expire_us,
    )


def encode_bytes(value: bytes | None) -> bytes | None:
    """A BYTES value as the client library wants it: base64 text.

    The library sends ``bytes`` unchanged when they happen to be valid UTF-8 (assuming
    base64), so raw binary would be corrupted or refused; it also hands BYTES back still
    base64-encoded (see ``record_from_row``). PROTO columns do not need this: the library encodes
    and decodes messages itself.
    """
    return None if value is None else base64.b64encode(value)


def insert_values(record: OperationRecord, work: str) -> list[Any]:
    """Values of ``INSERT_COLUMNS`` for a new record (version, times already set)."""
    return [
        record.operation,
        record.version,
        record.create_time_us,
        record.update_time_us,
        record.metadata_type,
        record.error_code,
        record.state,
        record.owner,
        # NULL, not "": the unique NULL_FILTERED index then ignores requests without an id.
        record.request_id or None,
        record.method,
        work,
        encode_bytes(record.checkpoint),
        record.lease_holder,
        record.lease_expire_us,
        spanner.COMMIT_TIMESTAMP if record.done else None,
        *(record.keys.column(column) for column in KEY_COLUMNS),
    ]


def label_rows(record: OperationRecord) -> list[list[Any]]:
    """Values of ``LABEL_COLUMNS`` for each label of a new record."""
    return [
        [record.name, key, value, record.create_time_us] for key, value in record.labels.items()
    ]


def param_types_of(params: Mapping[str, Any]) -> dict[str, Any]:
    """Spanner parameter types of bool, int, str and list-of-str values."""
    types: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, bool):  # before int: bool is an int subclass
            types[name] = param_types.BOOL
        elif isinstance(value, int):
            types[name] = param_types.INT64
        elif isinstance(value, str):
            types[name] = param_types.STRING
        elif isinstance(value, list):
            types[name] = _Array(param_types.STRING)
        else:
            raise TypeError(f"parameter {name!r} has unsupported type {type(value).__name__}")
    return types
