"""SpannerStore: the OperationStore on Cloud Spanner (the production backend).

Every Spanner call is blocking network I/O: each store method runs one synchronous
function on a bounded thread pool and awaits it (:mod:`lro_server.storage.spanner_calls`,
which also translates errors, once); the event loop never blocks.

Mapping of the port's rules (see :mod:`lro_server.core.store`) onto Spanner:

- Reads (``get``, ``list``) are strong single-use snapshots.
- Writes are read-write transactions through ``Database.run_in_transaction``, which
  retries ABORTED itself. Compare-and-set is one ``UPDATE ... WHERE version = @version
  AND NOT done`` statement, as in SQLite; when it matches nothing, a read in the same
  transaction tells NotFound, FailedPrecondition (done) and Aborted (version) apart.
- Listing reads ``OperationsByCreateTime`` (or ``OperationsByOwnerCreateTime``; for
  ``done = false`` their counterparts holding unfinished operations only) with the
  same filter compiler and keyset fragment as SQLite. Those fragments name the operation
  ``name``; the table keeps the reference schema's ``key``, so the query selects from a
  derived table that renames it (a plain projection: the optimizer still walks the index).
  A filter requiring one label's value reads the label index instead
  (:mod:`lro_server.storage.spanner_labels`).
- Claiming selects candidates through the small ``OperationsClaimable`` index (only
  unfinished operations are in it) and leases them, in one transaction
  (:mod:`lro_server.storage.spanner_leases`).
- ``done_time`` is set to the commit timestamp when an operation becomes done; the row
  deletion policy removes it ``retention_days`` later.

Like the SQLite store, this one takes create and update times from its clock
(``update_time_us`` strictly increases per record), leaves owner, request id, method,
create time and the lease alone on ``update``, and does not change ``version`` when
claiming or releasing.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import spanner

from lro_server.core.clock import Clock, SystemClock, to_micros
from lro_server.core.errors import LroError
from lro_server.core.filter_ast import label_equality
from lro_server.core.record import OperationRecord, for_create
from lro_server.core.store import (
    ExpiryCursor,
    JournalEvent,
    ListQuery,
    already_exists,
    batch_works,
    check_journal,
    journal_conflict,
    not_found,
    update_failure,
)
from lro_server.core.work_column import writable_work
from lro_server.storage.spanner_batch import UpdateBatch
from lro_server.storage.spanner_calls import DEFAULT_THREADS, DEFAULT_TIMEOUT, SpannerCalls
from lro_server.storage.spanner_client import SpannerUrl
from lro_server.storage.spanner_labels import labeled
from lro_server.storage.spanner_leases import SpannerLeases
from lro_server.storage.spanner_ping import DEFAULT_PING_TIMEOUT, SpannerPing
from lro_server.storage.spanner_schema import LABELS_TABLE, TABLE, migrate
from lro_server.storage.spanner_sql import (
    BY_REQUEST,
    COLUMNS,
    DELETE,
    EXPIRED,
    INSERT_COLUMNS,
    JOURNAL_COLUMNS,
    JOURNAL_READ,
    JOURNAL_TABLE,
    LABEL_COLUMNS,
    PING,
    UPDATE_TYPES,
    insert_values,
    label_rows,
    list_query,
    param_types_of,
    record_from_row,
    update_statement,
)
from lro_server.storage.sql import expired_params, updated_record

__all__ = ["SpannerStore", "migrate"]

# google-cloud-spanner is only partly annotated; these names are used as untyped.
_KeySet: Any = spanner.KeySet


class SpannerStore:
    """OperationStore on one Spanner database.

    Build it with ``spanner_open.open_spanner_store``, which also checks that the schema
    exists.

    Args:
        url: The database.
        database: A ``google.cloud.spanner`` Database bound to ``url``.
        clock: Source of create and update times and of lease expiry.
        threads: Size of the thread pool that runs Spanner calls.
        timeout: Deadline in seconds of one call (a transaction including its retries).
        ping_timeout: Deadline in seconds of one ping (see ``spanner_ping``).
    """

    def __init__(
        self,
        url: SpannerUrl,
        database: Any,
        clock: Clock | None = None,
        *,
        threads: int = DEFAULT_THREADS,
        timeout: float = DEFAULT_TIMEOUT,
        ping_timeout: float = DEFAULT_PING_TIMEOUT,
    ) -> None:
        self.url = url
        self._db = database
        self._clock: Clock = clock or SystemClock()
        self._timeout = timeout
        self._calls = SpannerCalls(url, database, threads, timeout)
        self._leases = SpannerLeases(self._calls, self._clock)
        self._pinger = SpannerPing(database, PING, ping_timeout)

    # --- the OperationStore port -------------------------------------------------------

    async def create(self, record: OperationRecord) -> tuple[OperationRecord, bool]:
        """Store ``record`` as version 1, or return the owner's record with its request id.

        Raises:
            AlreadyExists: A record with this name exists.
            FailedPrecondition: The record is over a size limit; nothing was written.
        """
        stored = for_create(record, to_micros(self._clock.now()))
        return await self._calls.run(self._create, stored, writable_work(stored))

    async def get(self, name: str) -> OperationRecord:
        """Return the stored record (strong read), or raise NotFound."""
        return await self._calls.run(self._get, name)

    def cached(self, name: str) -> OperationRecord | None:
        """None: every read is a strong read of Spanner (see get)."""
        return None

    async def get_many(self, names: Sequence[str]) -> builtins.list[OperationRecord | None]:
        """The stored records (None where missing), in one strong read of all the keys."""
        if not names:
            return []
        return await self._calls.run(self._get_many, list(names))

    async def list(self, query: ListQuery) -> builtins.list[OperationRecord]:
        """Return up to ``query.limit`` matching records, newest first."""
        if query.limit <= 0:
            return []
        label = label_equality(query.filter)
        if label is not None:
            return await self._calls.run(labeled, self._calls, query, label)
        sql, params = list_query(query)
        return await self._calls.run(self._query, sql, params)

    async def update(
        self, record: OperationRecord, *, journal: Sequence[JournalEvent] = ()
    ) -> OperationRecord:
        """Compare-and-set ``record`` against its version and insert ``journal``'s rows,
        in one transaction; return the stored result.

        Raises:
            Aborted: The stored version differs (someone else wrote first), or a journal
                event's seq is stored already.
            NotFound: No such record.
            FailedPrecondition: The stored record is done, or ``record`` is over a size
                limit; nothing was written.
        """
        work = writable_work(record)
        check_journal(record.name, journal)
        now = to_micros(self._clock.now())
        return await self._calls.run(self._update, record, work, now, tuple(journal))

    async def append(self, record: OperationRecord, journal: Sequence[JournalEvent]) -> None:
        """Append ``journal`` while the stored record is at ``record.version`` and not
        done, without writing the record; see OperationStore.append."""
        check_journal(record.name, journal)
        if journal:
            await self._calls.run(self._append, record, tuple(journal))

    async def journal(self, name: str, after_seq: int = 0) -> builtins.list[JournalEvent]:
        """The journal events of ``name`` after ``after_seq``, in seq order (strong read)."""
        params = {"name": name, "after": after_seq}
        rows = await self._calls.run(self._calls.snapshot_rows, JOURNAL_READ, params)
        return [JournalEvent(int(seq), str(data)) for seq, data in rows]

    async def update_many(
        self, records: Sequence[OperationRecord]
    ) -> builtins.list[OperationRecord | LroError]:
        """Compare-and-set each record in one read-write transaction: the updates go as
        one batch of DML statements, then one read tells each row's outcome; see
        OperationStore.update_many."""
        batch = UpdateBatch(records, batch_works(records), to_micros(self._clock.now()))
        if batch.empty:
            return batch.results({})
        return batch.results(
            await self._calls.run(self._calls.transaction, batch.run, self._timeout)
        )

    async def delete(self, name: str) -> None:
        """Forget the record (its labels and journal rows go with it: ON DELETE CASCADE),
        or raise NotFound."""
        await self._calls.run(self._delete, name)

    async def expired(
        self, before_us: int, after: ExpiryCursor | None, limit: int
    ) -> builtins.list[OperationRecord]:
        """Done records last changed before ``before_us``, oldest first, after ``after``."""
        params = expired_params(before_us, after, limit)
        return await self._calls.run(self._query, EXPIRED, params)

    async def claim(
        self, holder: str, lease_seconds: float, limit: int
    ) -> builtins.list[OperationRecord]:
        """Lease up to ``limit`` unfinished operations to ``holder`` for ``lease_seconds``.

        Renews the holder's own leases first, then takes operations whose lease expired
        (or that never had one). Returns the claimed records, oldest first.
        """
        return await self._leases.claim(holder, lease_seconds, limit)

    async def release(self, holder: str, names: builtins.list[str]) -> None:
        """End ``holder``'s leases on ``names``; others' leases and unknown names are ignored."""
        await self._leases.release(holder, names)

    async def lease_holders(self) -> dict[str, int]:
        """Unfinished operations by live lease holder ("" for nobody); see the port."""
        return await self._leases.holders()

    async def ping(self) -> None:
        """Read the table once within the ping's deadline; raise Unavailable if that fails."""
        await self._calls.run(self._pinger)

    async def check(self, timeout: float) -> None:
        """:meth:`ping` with a deadline of ``timeout`` seconds (opening: credentials may be
        fetched first)."""
        await self._calls.run(self._pinger, timeout)

    async def close(self) -> None:
        """Stop the thread pools; later calls raise Unavailable. Idempotent.

        ``Database.close()`` is deliberately not called: against the emulator it can block
        for minutes, and Spanner expires idle sessions on its own.
        """
        await self._calls.close()

    # --- work done on the pool's threads -------------------------------------------------

    def _create(self, record: OperationRecord, work: str) -> tuple[OperationRecord, bool]:
        def attempt(txn: Any) -> OperationRecord | None:
            if record.request_id:
                found = self._by_request(txn, record.owner, record.request_id)
                if found is not None:
                    return found
            txn.insert(TABLE, INSERT_COLUMNS, [insert_values(record, work)])
            if record.labels:
                txn.insert(LABELS_TABLE, LABEL_COLUMNS, label_rows(record))
            return None

        try:
            found = self._calls.transaction(attempt)
        except gexc.AlreadyExists as exc:
            # Either the name is taken, or a concurrent create with the same request id
            # won the unique index: then that record is the answer (AIP-155).
            if record.request_id:
                with self._db.snapshot() as snapshot:
                    found = self._by_request(snapshot, record.owner, record.request_id)
                if found is not None:
                    return found, False
            raise already_exists(record.name) from exc
        if found is not None:
            return found, False
        return record, True

    def _by_request(self, reader: Any, owner: str, request_id: str) -> OperationRecord | None:
        rows = self._calls.rows(reader, BY_REQUEST, {"owner": owner, "request_id": request_id})
        return record_from_row(rows[0]) if rows else None

    def _get(self, name: str) -> OperationRecord:
        with self._db.snapshot() as snapshot:
            rows = list(
                snapshot.read(TABLE, COLUMNS, _KeySet(keys=[[name]]), timeout=self._timeout)
            )
        if not rows:
            raise not_found(name)
        return record_from_row(rows[0])

    def _get_many(self, names: builtins.list[str]) -> builtins.list[OperationRecord | None]:
        keys = _KeySet(keys=[[name] for name in dict.fromkeys(names)])
        with self._db.snapshot() as snapshot:
            rows = snapshot.read(TABLE, COLUMNS, keys, timeout=self._timeout)
            found = {record.name: record for record in map(record_from_row, rows)}
        return [found.get(name) for name in names]

    def _query(self, sql: str, params: Mapping[str, Any]) -> builtins.list[OperationRecord]:
        return [record_from_row(row) for row in self._calls.snapshot_rows(sql, params)]

    def _update(
        self, record: OperationRecord, work: str, now: int, journal: Sequence[JournalEvent]
    ) -> OperationRecord:
        sql, params = update_statement(record, work, now)

        def attempt(txn: Any) -> builtins.list[Any]:
            rows = list(
                txn.execute_sql(sql, params=params, param_types=UPDATE_TYPES, timeout=self._timeout)
            )
            if not rows:
                raise update_failure(record, self._stored_status(txn, record.name))
            if journal:
                values = [[record.name, event.seq, event.data] for event in journal]
                txn.insert(JOURNAL_TABLE, JOURNAL_COLUMNS, values)
            return list(rows[0])

        try:
            row = self._calls.transaction(attempt)
        except gexc.AlreadyExists as exc:
            # The insert of a journal row whose (key, seq) exists fails at commit.
            raise journal_conflict(record.name, journal[0].seq if journal else 0) from exc
        return updated_record(record, row)

    def _append(self, record: OperationRecord, journal: Sequence[JournalEvent]) -> None:
        def attempt(txn: Any) -> None:
            # The read holds the row until commit: a concurrent write of it aborts one side.
            stored = self._stored_status(txn, record.name)
            if stored is None or stored[1] or stored[0] != record.version:
                raise update_failure(record, stored)
            values = [[record.name, event.seq, event.data] for event in journal]
            txn.insert(JOURNAL_TABLE, JOURNAL_COLUMNS, values)

        try:
            self._calls.transaction(attempt)
        except gexc.AlreadyExists as exc:
            raise journal_conflict(record.name, journal[0].seq) from exc

    def _stored_status(self, txn: Any, name: str) -> tuple[int, bool] | None:
        """(version, done) of ``name`` read in ``txn``, or None when there is no such row."""
        rows = list(
            txn.read(TABLE, ("version", "done"), _KeySet(keys=[[name]]), timeout=self._timeout)
        )
        return (rows[0][0], rows[0][1]) if rows else None

    def _delete(self, name: str) -> None:
        params = {"name": name}

        def attempt(txn: Any) -> int:
            count: int = txn.execute_update(
                DELETE, params=params, param_types=param_types_of(params), timeout=self._timeout
            )
            return count

        if self._calls.transaction(attempt) == 0:
            raise not_found(name)
