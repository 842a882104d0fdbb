"""A batch of compare-and-set updates in one Spanner read-write transaction.

The updates go to Spanner as one batch of DML statements (one round trip), each the same
``UPDATE ... WHERE version = @version AND NOT done`` a single update runs; then one read of
the batch's rows, in the same transaction, tells each row's outcome: DML writes are
visible to later reads of their transaction, so a changed row reads back as stored, and a
row the batch did not change says why (missing, done, another version).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import spanner

from lro_server.core.errors import LroError
from lro_server.core.record import OperationRecord
from lro_server.core.store import update_failure
from lro_server.storage.spanner_schema import TABLE
from lro_server.storage.spanner_sql import UPDATE_TYPES, update_statement
from lro_server.storage.sql import UPDATE_RETURNS, updated_record

# google-cloud-spanner and api-core are only partly annotated; these are used as untyped.
_KeySet: Any = spanner.KeySet
_from_grpc_status: Any = gexc.from_grpc_status

#: What the batch reads back: the columns an update returns, then ``done``.
STATUS_COLUMNS = ("key", *UPDATE_RETURNS, "done")


class UpdateBatch:
    """The records of one ``update_many`` with their stored ``work`` (or the error that
    kept a record out of the batch, e.g. over a size limit).

    Args:
        records: The records, in the caller's order.
        works: For each record, its ``work`` column or the error to answer in its place.
        now: The update time of the batch (microseconds).
    """

    def __init__(
        self, records: Sequence[OperationRecord], works: Sequence[str | LroError], now: int
    ) -> None:
        self._records = list(records)
        self._works = list(works)
        self._writes = [
            (record, update_statement(record, work, now))
            for record, work in zip(records, works, strict=True)
            if isinstance(work, str)
        ]

    @property
    def empty(self) -> bool:
        """Whether no record is left to write."""
        return not self._writes

    def run(self, txn: Any, timeout: float) -> dict[str, OperationRecord | LroError]:
        """The transaction body: each written record's outcome, by name."""
        statements = [(sql, params, UPDATE_TYPES) for _, (sql, params) in self._writes]
        status, counts = txn.batch_update(statements, timeout=timeout)
        if status.code != 0:
            raise _from_grpc_status(status.code, status.message)
        keys = _KeySet(keys=[[record.name] for record, _ in self._writes])
        stored = {row[0]: row[1:] for row in txn.read(TABLE, STATUS_COLUMNS, keys)}
        outcome: dict[str, OperationRecord | LroError] = {}
        for (record, _), count in zip(self._writes, counts, strict=True):
            row = stored.get(record.name)
            if count == 1 and row is not None:
                outcome[record.name] = updated_record(record, row)
            else:
                outcome[record.name] = update_failure(
                    record, None if row is None else (row[0], row[8])
                )
        return outcome

    def results(
        self, outcome: dict[str, OperationRecord | LroError]
    ) -> list[OperationRecord | LroError]:
        """Every record's answer, in the caller's order."""
        return [
            work if isinstance(work, LroError) else outcome[record.name]
            for record, work in zip(self._records, self._works, strict=True)
        ]
