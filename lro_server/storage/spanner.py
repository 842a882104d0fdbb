"""SpannerStore: the OperationStore on Cloud Spanner (the production backend).

Every Spanner call is blocking network I/O, so each store method runs one synchronous
function on a bounded thread pool (``threads`` workers) and awaits it; the event loop
never blocks. Errors are translated once, by :func:`spanner_client.translated`, around
that function.

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
- Claiming selects candidates through the small ``OperationsClaimable`` index (only
  unfinished operations are in it) and leases them, in one transaction.
- ``done_time`` is set to the commit timestamp when an operation becomes done; the row
  deletion policy removes it ``retention_days`` later.

Like the SQLite store, this one takes create and update times from its clock
(``update_time_us`` strictly increases per record), leaves owner, request id, method,
create time and the lease alone on ``update``, and does not change ``version`` when
claiming or releasing.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import functools
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import spanner

from lro_server.core.clock import Clock, SystemClock, to_micros
from lro_server.core.errors import (
    AlreadyExists,
    InvalidArgument,
    LroError,
    Unavailable,
)
from lro_server.core.filter_ast import Compare, label_equality, without
from lro_server.core.filter_eval import filter_row, matches
from lro_server.core.pagetoken import Cursor
from lro_server.core.record import OperationRecord, for_create
from lro_server.core.store import (
    ExpiryCursor,
    JournalEvent,
    ListQuery,
    check_journal,
    distinct_names,
    journal_conflict,
    not_found,
    update_failure,
)
from lro_server.core.work_column import writable_work
from lro_server.storage.spanner_batch import UpdateBatch
from lro_server.storage.spanner_client import (
    SpannerUrl,
    translated,
)
from lro_server.storage.spanner_ping import DEFAULT_PING_TIMEOUT, SpannerPing
from lro_server.storage.spanner_schema import LABELS_TABLE, TABLE, migrate
from lro_server.storage.spanner_sql import (
    BY_REQUEST,
    CLAIMABLE,
    COLUMNS,
    DELETE,
    EXPIRED,
    HOLDERS,
    INSERT_COLUMNS,
    JOURNAL_COLUMNS,
    JOURNAL_READ,
    JOURNAL_TABLE,
    LABEL_COLUMNS,
    LEASE,
    PING,
    RELEASE,
    UPDATE_TYPES,
    insert_values,
    label_rows,
    labeled_candidates,
    list_query,
    param_types_of,
    record_from_row,
    update_statement,
    updated_record,
)

__all__ = ["SpannerStore", "migrate"]

#: Entries of the label index read per round of a label-driven listing (at least a page).
LABEL_BATCH = 100

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

# google-cloud-spanner is only partly annotated; these names are used as untyped.
_KeySet: Any = spanner.KeySet

#: Default worker threads (and pooled sessions) per store.
DEFAULT_THREADS = 16
#: Default deadline of one store call (a query, or a transaction with its retries).
DEFAULT_TIMEOUT = 30.0
# Seconds to wait before retrying an ABORTED transaction when the server says nothing.
_FALLBACK_RETRY_DELAY = (0.005, 0.05)


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
        self._pinger = SpannerPing(database, PING, ping_timeout)
        self._clock: Clock = clock or SystemClock()
        self._timeout = timeout
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="spanner"
        )
        # Leases (claim, release, lease_holders) run on a thread of their own: behind a
        # queue of reads and writes on the pool a renewal could come after the lease ran out.
        self._leases = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="spanner-leases"
        )
        self._closed = False

    # --- the OperationStore port -------------------------------------------------------

    async def create(self, record: OperationRecord) -> tuple[OperationRecord, bool]:
        """Store ``record`` as version 1, or return the owner's record with its request id.

        Raises:
            AlreadyExists: A record with this name exists.
            FailedPrecondition: The record is over a size limit; nothing was written.
        """
        stored = for_create(record, to_micros(self._clock.now()))
        return await self._run(self._create, stored, writable_work(stored))

    async def get(self, name: str) -> OperationRecord:
        """Return the stored record (strong read), or raise NotFound."""
        return await self._run(self._get, name)

    async def get_many(self, names: Sequence[str]) -> builtins.list[OperationRecord | None]:
        """The stored records (None where missing), in one strong read of all the keys."""
        if not names:
            return []
        return await self._run(self._get_many, list(names))

    async def list(self, query: ListQuery) -> builtins.list[OperationRecord]:
        """Return up to ``query.limit`` matching records, newest first."""
        if query.limit <= 0:
            return []
        label = label_equality(query.filter)
        if label is not None:
            return await self._run(self._labeled, query, label)
        sql, params = list_query(query)
        return await self._run(self._query, sql, params)

    def _labeled(self, query: ListQuery, label: Compare) -> builtins.list[OperationRecord]:
        """A listing driven by the label index: batches of its entries, newest first, each
        batch's operations read by key and tested against the rest of the filter, until
        the page is full (a page read, not a scan)."""
        rest = without(query.filter, label)
        found: builtins.list[OperationRecord] = []
        after = query.after
        batch = max(query.limit, LABEL_BATCH)
        with self._db.snapshot(multi_use=True) as snapshot:
            while len(found) < query.limit:
                sql, params = labeled_candidates(label, after, batch)
                candidates = self._rows(snapshot, sql, params)
                if not candidates:
                    break
                keys = [[str(row[0])] for row in candidates]
                rows = snapshot.read(TABLE, COLUMNS, _KeySet(keys=keys), timeout=self._timeout)
                records = {r.name: r for r in map(record_from_row, rows)}
                for (key,) in keys:
                    record = records.get(key)
                    if record is None or (query.owner is not None and record.owner != query.owner):
                        continue
                    if matches(rest, filter_row(record)):
                        found.append(record)
                key, create_us = candidates[-1]
                after = Cursor(int(create_us), str(key))
                if len(candidates) < batch:
                    break
        return found[: query.limit]

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
        return await self._run(self._update, record, work, now, tuple(journal))

    async def journal(self, name: str, after_seq: int = 0) -> builtins.list[JournalEvent]:
        """The journal events of ``name`` after ``after_seq``, in seq order (strong read)."""
        params = {"name": name, "after": after_seq}
        rows = await self._run(self._read_rows, JOURNAL_READ, params)
        return [JournalEvent(int(seq), str(data)) for seq, data in rows]

    async def update_many(
        self, records: Sequence[OperationRecord]
    ) -> builtins.list[OperationRecord | LroError]:
        """Compare-and-set each record in one read-write transaction: the updates go as
        one batch of DML statements, then one read tells each row's outcome; see
        OperationStore.update_many."""
        distinct_names(records)
        works: builtins.list[str | LroError] = []
        for record in records:
            try:
                works.append(writable_work(record))
            except LroError as exc:
                works.append(exc)
        batch = UpdateBatch(records, works, to_micros(self._clock.now()))
        if batch.empty:
            return batch.results({})
        return batch.results(await self._run(self._transaction, batch.run, self._timeout))

    async def delete(self, name: str) -> None:
        """Forget the record (its labels and journal rows go with it: ON DELETE CASCADE),
        or raise NotFound."""
        await self._run(self._delete, name)

    async def expired(
        self, before_us: int, after: ExpiryCursor | None, limit: int
    ) -> builtins.list[OperationRecord]:
        """Done records last changed before ``before_us``, oldest first, after ``after``."""
        after_us, after_name = after or (-1, "")
        params = {"before": before_us, "after_us": after_us, "after_name": after_name}
        return await self._run(self._query, EXPIRED, {**params, "limit": limit})

    async def claim(
        self, holder: str, lease_seconds: float, limit: int
    ) -> builtins.list[OperationRecord]:
        """Lease up to ``limit`` unfinished operations to ``holder`` for ``lease_seconds``.

        Renews the holder's own leases first, then takes operations whose lease expired
        (or that never had one). Returns the claimed records, oldest first.
        """
        if not holder:
            raise InvalidArgument("holder is required", metadata={"field": "holder"})
        if lease_seconds <= 0:
            raise InvalidArgument("lease_seconds must be positive")
        if limit <= 0:
            return []
        now = to_micros(self._clock.now())
        expire = now + round(lease_seconds * 1_000_000)
        claimed = await self._run(self._claim, holder, now, expire, limit, pool=self._leases)
        claimed.sort(key=lambda r: (r.create_time_us, r.name))
        return claimed

    async def release(self, holder: str, names: builtins.list[str]) -> None:
        """End ``holder``'s leases on ``names``; others' leases and unknown names are ignored."""
        if names:
            await self._run(self._release, holder, list(names), pool=self._leases)

    async def lease_holders(self) -> dict[str, int]:
        """Unfinished operations by live lease holder ("" for nobody); see the port."""
        now = to_micros(self._clock.now())
        return await self._run(self._lease_holders, now, pool=self._leases)

    async def ping(self) -> None:
        """Read the table once within the ping's deadline; raise Unavailable if that fails."""
        await self._run(self._pinger)

    async def check(self, timeout: float) -> None:
        """:meth:`ping` with a deadline of ``timeout`` seconds (opening: credentials may be
        fetched first)."""
        await self._run(self._pinger, timeout)

    async def close(self) -> None:
        """Stop the thread pool; later calls raise Unavailable. Idempotent.

        ``Database.close()`` is deliberately not called: against the emulator it can block
        for minutes, and Spanner expires idle sessions on its own.
        """
        if not self._closed:
            self._closed = True
            for pool in (self._executor, self._leases):
                await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    # --- work done on the pool's threads -------------------------------------------------

    async def _run(
        self,
        fn: Callable[..., _T],
        /,
        *args: Any,
        pool: concurrent.futures.Executor | None = None,
    ) -> _T:
        """Run ``fn(*args)`` on the pool (or ``pool``), with Spanner errors translated.

        A call unanswered by its deadline fails with Unavailable, even where the client
        library would go on retrying (the session pool's check of a session does, for 30 s).
        """
        if self._closed:
            raise Unavailable("the Spanner store is closed", reason="STORE_CLOSED")
        call = functools.partial(self._translated, fn, *args)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                return await loop.run_in_executor(pool or self._executor, call)
        except TimeoutError as exc:
            raise Unavailable(
                f"Spanner ({self.url.database_path}) did not answer within {self._timeout:g}s"
            ) from exc
        except RuntimeError as exc:
            if self._closed:  # closed while this call was being submitted
                raise Unavailable("the Spanner store is closed", reason="STORE_CLOSED") from exc
            raise

    def _translated(self, fn: Callable[..., _T], /, *args: Any) -> _T:
        with translated(self.url.database_path):
            return fn(*args)

    def _transaction(self, fn: Callable[..., _T], /, *args: Any) -> _T:
        """Run ``fn(transaction, *args)`` in a read-write transaction, retried on ABORTED."""
        # Cloud Spanner attaches RetryInfo to ABORTED and the library waits that long. The
        # emulator attaches none, and the library's fallback (2**attempt seconds) turns
        # every contended write into a stall of seconds, exhausting the call's budget. The
        # jittered fallback below applies only when the server gives no delay.
        result: _T = self._db.run_in_transaction(
            fn,
            *args,
            timeout_secs=self._timeout,
            default_retry_delay=random.uniform(*_FALLBACK_RETRY_DELAY),
        )
        return result

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
            found = self._transaction(attempt)
        except gexc.AlreadyExists as exc:
            # Either the name is taken, or a concurrent create with the same request id
            # won the unique index: then that record is the answer (AIP-155).
            if record.request_id:
                with self._db.snapshot() as snapshot:
                    found = self._by_request(snapshot, record.owner, record.request_id)
                if found is not None:
                    return found, False
            raise AlreadyExists(
                f"operation {record.name} already exists", metadata={"name": record.name}
            ) from exc
        if found is not None:
            return found, False
        return record, True

    def _by_request(self, reader: Any, owner: str, request_id: str) -> OperationRecord | None:
        rows = self._rows(reader, BY_REQUEST, {"owner": owner, "request_id": request_id})
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
        with self._db.snapshot() as snapshot:
            return [record_from_row(row) for row in self._rows(snapshot, sql, params)]

    def _read_rows(self, sql: str, params: Mapping[str, Any]) -> builtins.list[Any]:
        with self._db.snapshot() as snapshot:
            return self._rows(snapshot, sql, params)

    def _rows(self, reader: Any, sql: str, params: Mapping[str, Any]) -> builtins.list[Any]:
        """All rows of ``sql`` read by a snapshot or a transaction, within the deadline."""
        return list(
            reader.execute_sql(
                sql, params=dict(params), param_types=param_types_of(params), timeout=self._timeout
            )
        )

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
            row = self._transaction(attempt)
        except gexc.AlreadyExists as exc:
            # The insert of a journal row whose (key, seq) exists fails at commit.
            raise journal_conflict(record.name, journal[0].seq if journal else 0) from exc
        return updated_record(record, row)

    def _lease_holders(self, now: int) -> dict[str, int]:
        with self._db.snapshot() as snapshot:
            rows = self._rows(snapshot, HOLDERS, {"now": now})
        return {str(holder): int(count) for holder, count in rows}

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

        if self._transaction(attempt) == 0:
            raise not_found(name)

    def _claim(
        self, holder: str, now: int, expire: int, limit: int
    ) -> builtins.list[OperationRecord]:
        select = {"holder": holder, "now": now, "limit": limit}

        def attempt(txn: Any) -> builtins.list[OperationRecord]:
            keys = [row[0] for row in self._rows(txn, CLAIMABLE, select)]
            if not keys:
                return []
            lease = {"holder": holder, "expire": expire, "keys": keys}
            return [record_from_row(row) for row in self._rows(txn, LEASE, lease)]

        return self._transaction(attempt)

    def _release(self, holder: str, names: Sequence[str]) -> None:
        params = {"holder": holder, "names": list(names)}

        def attempt(txn: Any) -> None:
            txn.execute_update(
                RELEASE, params=params, param_types=param_types_of(params), timeout=self._timeout
            )

        self._transaction(attempt)
