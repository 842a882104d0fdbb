"""SqliteStore: the OperationStore on a local SQLite file (the zero-setup default).

Calls run on the event loop, synchronously. Measured here: a primary-key read ~15 µs, a
write transaction ~0.1 ms (WAL, ``synchronous=NORMAL``, five small indexes), a claim of
100 operations ~1 ms. A hop to a worker thread alone costs ~120 µs and halves
throughput, and SQLite serializes writers anyway. No method awaits in the middle of a
transaction, so coroutines of one process never interleave inside one.

Several processes may share one file (see :mod:`lro_server.storage.sqlite_connection`:
one ``BEGIN IMMEDIATE`` transaction per write, another process's lock waited for without
blocking the loop). Compare-and-set is ``UPDATE ... WHERE version = ?`` and claiming is
two ``UPDATE ... RETURNING`` statements, each inside such a transaction. Reads rarely meet
a lock at all (WAL readers do not wait for writers) and cached reads never do.

Besides the port's rules (see :mod:`lro_server.core.store`), this backend:

- takes create and update times from its clock; ``update_time_us`` strictly increases
  per record (``max(now, previous + 1)``) even when the clock stands still or steps back;
- leaves owner, request id, method, create time and the lease alone on ``update``
  (leases belong to ``claim``/``release``, so a tracker's write never undoes a renewal);
- does not change ``version`` or ``update_time_us`` when claiming or releasing.

``get`` serves records it read before from a :class:`ReadCache` (bounded LRU) without
reading the row again, and stays exact across processes: the file's data_version changes
whenever another connection has committed to it since this connection last looked, and
then the whole cache is dropped; this connection's own commits do not change it, so every
write method here drops the entries of the records it writes, and a create or update keeps
the record it committed (the next read of it, a WaitOperation or GetOperation right after
the write as a rule, is a hit). :class:`DataVersion` asks
SQLite for it only when the wal-index header in shared memory says somebody committed, so
a hit makes no system call. A hit costs ~2 µs instead of ~21 µs (the SELECT and, mostly,
building the record).

Each store method runs one synchronous attempt (``_create``, ``_get``, ...) through
:meth:`SqliteConnection.attempt`; it does its whole work, read-cache entries included,
without awaiting, so it can be repeated as it is.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lro_server.core.clock import Clock, SystemClock, to_micros
from lro_server.core.errors import LroError, NotFound
from lro_server.core.record import OperationRecord, for_create
from lro_server.core.store import (
    ExpiryCursor,
    JournalEvent,
    ListQuery,
    already_exists,
    batch_works,
    check_claim,
    check_journal,
    journal_conflict,
    lease_expiry,
    not_found,
    update_each,
    update_failure,
)
from lro_server.core.work_column import writable_work
from lro_server.storage import sqlite_schema as schema
from lro_server.storage.read_cache import DEFAULT_ENTRIES, ReadCache
from lro_server.storage.sql import expired_params, updated_record
from lro_server.storage.sqlite_connection import DEFAULT_BUSY_TIMEOUT, SqliteConnection
from lro_server.storage.sqlite_errors import is_busy, translate
from lro_server.storage.sqlite_version import DataVersion

# Inside SqliteStore the name ``list`` is the method, so annotations there use this alias.
_Records = list[OperationRecord]
_Results = list[OperationRecord | LroError]
_Found = list[OperationRecord | None]
_Events = list[JournalEvent]


class SqliteStore:
    """OperationStore on one SQLite connection, used only from the event loop's thread.

    Args:
        path: Database file (created with its schema if missing) or ``":memory:"``.
        clock: Source of create and update times.
        busy_timeout: Seconds to wait for another process's lock before Unavailable
            (waited for with ``clock.sleep``, never blocking the event loop).
        read_cache_entries: Records ``get`` keeps in memory at most (0: none).

    Raises:
        Unavailable: The file cannot be opened.
        FailedPrecondition: The file has a schema newer than this code, or the SQLite
            library is older than ``sqlite_connection.MIN_SQLITE_VERSION``.
    """

    def __init__(
        self,
        path: str | Path,
        clock: Clock | None = None,
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        read_cache_entries: int = DEFAULT_ENTRIES,
    ) -> None:
        self.path = str(path)
        self._clock: Clock = clock or SystemClock()
        self._db = SqliteConnection(self.path, self._clock, busy_timeout)
        #: Waits out another process's lock (its counters are for tests and metrics).
        self.busy = self._db.busy
        #: Records read before, valid while no other connection commits (see get).
        self.read_cache = ReadCache(read_cache_entries)
        #: data_version of the file, asked of SQLite only after a commit (see get).
        self.data_version = DataVersion(self._db.sqlite, self._db.shm_path)
        #: DDL statements this constructor applied (a new file gets the whole schema).
        self.schema_changes = self._db.schema_changes

    # --- the OperationStore port -------------------------------------------------------

    async def create(self, record: OperationRecord) -> tuple[OperationRecord, bool]:
        """Store ``record`` as version 1, or return the owner's record with its request id.

        Raises:
            AlreadyExists: A record with this name exists.
            FailedPrecondition: The record is over a size limit; nothing was written.
        """
        record = for_create(record, to_micros(self._clock.now()))
        return await self._db.attempt(self._create, record, writable_work(record))

    async def get(self, name: str) -> OperationRecord:
        """Return the stored record, or raise NotFound."""
        # The attempt inline rather than through attempt(): get is the hottest call, and
        # a cached read is so cheap that one more coroutine would show.
        try:
            return self._get(name)
        except sqlite3.Error as exc:
            if not is_busy(exc):
                raise translate(exc) from exc
            busy = exc
        return await self._db.when_free(busy, self._get, name)

    def cached(self, name: str) -> OperationRecord | None:
        """The record the read cache holds for ``name`` while nobody else has committed
        (see get); None otherwise, and once closed (get then says why)."""
        if self._db.closed:
            return None
        try:
            return self.read_cache.get(name, self.data_version.current())
        except sqlite3.Error:  # asking data_version met a lock: get waits it out
            return None

    async def get_many(self, names: Sequence[str]) -> _Found:
        """The stored records (None where missing): point reads, most from the read cache."""
        return await self._db.attempt(self._get_many, names)

    async def list(self, query: ListQuery) -> _Records:
        """Return up to ``query.limit`` matching records, newest first."""
        if query.limit <= 0:
            return []
        return await self._db.attempt(self._list, *schema.list_query(query))

    async def update(
        self, record: OperationRecord, *, journal: Sequence[JournalEvent] = ()
    ) -> OperationRecord:
        """Compare-and-set ``record`` against its version and append ``journal``, in one
        transaction; return the stored result.

        Raises:
            Aborted: The stored version differs (someone else wrote first), or a journal
                event's seq is stored already.
            NotFound: No such record.
            FailedPrecondition: The stored record is done, or ``record`` is over a size
                limit; nothing was written.
        """
        work = writable_work(record)
        check_journal(record.name, journal)
        return await self._db.attempt(self._update, record, work, journal)

    async def append(self, record: OperationRecord, journal: Sequence[JournalEvent]) -> None:
        """Append ``journal`` while the stored record is at ``record.version`` and not
        done, without writing the record; see OperationStore.append."""
        check_journal(record.name, journal)
        if journal:
            await self._db.attempt(self._append, record, journal)

    async def journal(self, name: str, after_seq: int = 0) -> _Events:
        """The journal events of ``name`` after ``after_seq``, in seq order."""
        return await self._db.attempt(self._journal, name, after_seq)

    async def update_many(self, records: Sequence[OperationRecord]) -> _Results:
        """Compare-and-set each record in one write transaction (one commit); see
        OperationStore.update_many."""
        return await self._db.attempt(self._update_many, records, batch_works(records))

    async def delete(self, name: str) -> None:
        """Forget the record, its labels and its journal, or raise NotFound."""
        await self._db.attempt(self._delete, name)

    async def expired(self, before_us: int, after: ExpiryCursor | None, limit: int) -> _Records:
        """Done records last changed before ``before_us``, oldest first, after ``after``."""
        return await self._db.attempt(self._expired, expired_params(before_us, after, limit))

    async def claim(self, holder: str, lease_seconds: float, limit: int) -> _Records:
        """Lease up to ``limit`` unfinished operations to ``holder`` for ``lease_seconds``.

        Renews the holder's own leases first, then takes operations whose lease expired
        (or that never had one). Returns the claimed records, oldest first.
        """
        check_claim(holder, lease_seconds)
        if limit <= 0:
            return []
        claimed = await self._db.attempt(self._claim, holder, lease_seconds, limit)
        claimed.sort(key=lambda r: (r.create_time_us, r.name))
        return claimed

    async def release(self, holder: str, names: Sequence[str]) -> None:
        """End ``holder``'s leases on ``names``; others' leases and unknown names are ignored."""
        if names:
            await self._db.attempt(self._release, holder, names)

    async def lease_holders(self) -> dict[str, int]:
        """Unfinished operations by live lease holder ("" for nobody); see the port."""
        return await self._db.attempt(self._lease_holders)

    async def ping(self) -> None:
        """Read the table once; raise Unavailable if that fails."""
        await self._db.attempt(self._ping)

    async def close(self) -> None:
        """Close the connection; later calls raise Unavailable. Idempotent."""
        if not self._db.closed:
            self.read_cache.clear()
            self.data_version.close()
            self._db.close()

    # --- attempts: synchronous, whole, repeatable (see the module docstring) ---------------

    def _create(self, record: OperationRecord, work: str) -> tuple[OperationRecord, bool]:
        # Entries are dropped before each write: nothing awaits until it commits, so no
        # read can put the old row back in between.
        self.read_cache.discard(record.name)
        with self._db.write() as conn:
            if record.request_id:
                row = conn.execute(schema.BY_REQUEST, (record.owner, record.request_id)).fetchone()
                if row is not None:
                    return schema.record_from_row(row), False
            try:
                conn.execute(
                    schema.INSERT, schema.insert_params(record, work, record.create_time_us)
                )
            except sqlite3.IntegrityError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
                    raise
                raise already_exists(record.name) from exc
            if record.labels:
                conn.execute(
                    schema.INSERT_LABELS,
                    {
                        "name": record.name,
                        "now": record.create_time_us,
                        "labels": json.dumps(dict(record.labels)),
                    },
                )
        self._keep(record, work)
        return record, True

    def _get(self, name: str) -> OperationRecord:
        conn = self._db.open()
        cached = self.read_cache.get(name, self.data_version.current())
        if cached is not None:
            return cached
        # Read at or after data_version: a commit in between moves data_version, and the
        # next get drops this entry with the rest.
        row = conn.execute(schema.GET, (name,)).fetchone()
        if row is None:
            raise not_found(name)
        record = schema.record_from_row(row)
        self.read_cache.put(record, _row_size(row))
        return record

    def _get_many(self, names: Sequence[str]) -> _Found:
        found: _Found = []
        for name in names:
            try:
                found.append(self._get(name))
            except NotFound:  # this attempt reads the rest all the same
                found.append(None)
        return found

    def _list(self, sql: str, params: dict[str, Any]) -> _Records:
        rows = self._db.open().execute(sql, params)
        return [schema.record_from_row(row) for row in rows.fetchall()]

    def _update(
        self, record: OperationRecord, work: str, journal: Sequence[JournalEvent]
    ) -> OperationRecord:
        now = to_micros(self._clock.now())
        self.read_cache.discard(record.name)
        with self._db.write() as conn:
            # A journal append to a running operation (a durable method's commit) changes
            # no indexed column as a rule: the narrow statement first.
            narrow = bool(journal) and not record.done
            stored = self._compare_and_set(conn, record, work, now, narrow=narrow)
            for event in journal:
                try:
                    conn.execute(schema.JOURNAL_INSERT, (record.name, event.seq, event.data))
                except sqlite3.IntegrityError as exc:
                    raise journal_conflict(record.name, event.seq) from exc
        self._keep(stored, work)
        return stored

    def _append(self, record: OperationRecord, journal: Sequence[JournalEvent]) -> None:
        conn = self._db.open()
        try:
            if len(journal) == 1:
                # One statement, so one transaction of its own: a step's append as a rule.
                (event,) = journal
                params = (record.name, event.seq, event.data, record.version)
                if conn.execute(schema.JOURNAL_APPEND, params).rowcount:
                    return
            else:
                with self._db.write():
                    stored = conn.execute(schema.STATUS, (record.name,)).fetchone()
                    if stored != (record.version, 0):
                        raise update_failure(record, stored)
                    rows = [(record.name, event.seq, event.data) for event in journal]
                    conn.executemany(schema.JOURNAL_INSERT, rows)
                return
        except sqlite3.IntegrityError as exc:
            raise journal_conflict(record.name, journal[0].seq) from exc
        raise update_failure(record, conn.execute(schema.STATUS, (record.name,)).fetchone())

    def _update_many(
        self, records: Sequence[OperationRecord], works: Sequence[str | LroError]
    ) -> _Results:
        now = to_micros(self._clock.now())
        for record in records:
            self.read_cache.discard(record.name)
        with self._db.write() as conn:
            results = update_each(
                records, works, lambda record, work: self._compare_and_set(conn, record, work, now)
            )
        for result, work in zip(results, works, strict=True):
            if isinstance(result, OperationRecord) and isinstance(work, str):
                self._keep(result, work)
        return results

    def _keep(self, record: OperationRecord, work: str) -> None:
        """Keep a record this store just committed: the next read of it (a WaitOperation
        or GetOperation right after the write, as a rule) is then a hit. Own commits leave
        data_version as it was, so the entry stays valid until another connection
        commits."""
        checkpoint = record.checkpoint
        size = record.operation.ByteSize() + len(work) + (len(checkpoint) if checkpoint else 0)
        self.read_cache.put(record, size)

    def _compare_and_set(
        self,
        conn: sqlite3.Connection,
        record: OperationRecord,
        work: str,
        now: int,
        *,
        narrow: bool = False,
    ) -> OperationRecord:
        """One compare-and-set inside the caller's write transaction; ``narrow`` tries
        ``UPDATE_UNINDEXED`` first (it matches no row when an indexed column changes)."""
        params = {**schema.row_params(record, work), "now": now, "version": record.version}
        rows = conn.execute(schema.UPDATE_UNINDEXED, params).fetchall() if narrow else []
        if not rows:
            rows = conn.execute(schema.UPDATE, params).fetchall()
        if not rows:
            raise update_failure(record, conn.execute(schema.STATUS, (record.name,)).fetchone())
        return updated_record(record, rows[0])

    def _delete(self, name: str) -> None:
        self.read_cache.discard(name)
        with self._db.write() as conn:
            deleted = conn.execute(schema.DELETE, (name,)).rowcount
            conn.execute(schema.DELETE_LABELS, (name,))
            conn.execute(schema.JOURNAL_DELETE, (name,))
        if deleted == 0:
            raise not_found(name)

    def _journal(self, name: str, after_seq: int) -> _Events:
        rows = self._db.open().execute(schema.JOURNAL_READ, (name, after_seq)).fetchall()
        return [JournalEvent(seq, data) for seq, data in rows]

    def _expired(self, params: dict[str, Any]) -> _Records:
        rows = self._db.open().execute(schema.EXPIRED, params).fetchall()
        return [schema.record_from_row(row) for row in rows]

    def _claim(self, holder: str, lease_seconds: float, limit: int) -> _Records:
        now = to_micros(self._clock.now())
        params = {
            "holder": holder,
            "now": now,
            "expire": lease_expiry(now, lease_seconds),
            "limit": limit,
        }
        with self._db.write() as conn:
            rows = conn.execute(schema.RENEW, params).fetchall()
            if len(rows) < limit:
                rows += conn.execute(schema.TAKE, {**params, "limit": limit - len(rows)}).fetchall()
            for row in rows:  # their lease columns change
                self.read_cache.discard(row[0])
        return [schema.record_from_row(row) for row in rows]

    def _release(self, holder: str, names: Sequence[str]) -> None:
        for name in names:
            self.read_cache.discard(name)
        with self._db.write() as conn:
            conn.execute(schema.RELEASE, {"holder": holder, "names": json.dumps(list(names))})

    def _lease_holders(self) -> dict[str, int]:
        now = to_micros(self._clock.now())
        rows = self._db.open().execute(schema.HOLDERS, {"now": now}).fetchall()
        return {str(holder): int(count) for holder, count in rows}

    def _ping(self) -> None:
        self._db.open().execute(schema.PING).fetchall()


def _row_size(row: tuple[Any, ...]) -> int:
    """Estimated size of a record read from ``row``: its operation, work and checkpoint."""
    checkpoint = row[10]
    return len(row[1]) + len(row[9]) + (len(checkpoint) if checkpoint is not None else 0)
