"""MemoryStore: the OperationStore in plain Python, the reference implementation of the port.

It keeps records in dictionaries and answers every call at once, without sockets, threads
or files, so tests of the service, the tracker and the resume engine run in milliseconds.
The conformance suite (tests/conformance) runs it beside SQLite and Spanner: what it does
is what the port promises (see :mod:`lro_server.core.store`), and where the SQL stores
choose, it chooses as they do:

- create and update times come from its clock; ``update_time_us`` strictly increases per
  record (``max(now, previous + 1)``) even when the clock stands still or steps back;
- ``update`` leaves owner, request id, method, create time and the lease alone; claiming
  and releasing change neither ``version`` nor ``update_time_us``;
- the size limits and the JSON check of ``work`` are the other stores'
  (:func:`lro_server.core.record.writable_work`), applied before anything changes;
- listings filter with :func:`lro_server.core.filter_eval.matches`, the Python twin
  of the stores' filter SQL.

Records are values: the store keeps its own copy of every operation message and hands out
fresh copies, so a caller that mutates a message it got cannot change what is stored.
Several stores may share one :class:`MemoryData`, as replicas share a database; each call
runs under the data's lock, so it is atomic even when stores on other threads share it.
"""

from __future__ import annotations

import builtins
import dataclasses
import threading
from collections.abc import Sequence

from google.longrunning import operations_pb2

from lro_server.core.clock import Clock, SystemClock, to_micros
from lro_server.core.errors import LroError, Unavailable
from lro_server.core.filter_eval import filter_row, matches
from lro_server.core.record import OperationRecord, for_create
from lro_server.core.store import (
    EXPIRY_START,
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


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    """One stored record: a private copy of the record and its ``work`` as stored (JSON)."""

    record: OperationRecord
    work: str


class MemoryData:
    """The records of one in-memory database; share it between stores to model replicas.

    Attributes:
        lock: Held by every store call on this data (calls are atomic, as transactions).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[str, _Entry] = {}
        #: (owner, request_id) -> name, for requests with an id (AIP-155).
        self.by_request: dict[tuple[str, str], str] = {}
        #: name -> its journal events, in seq order.
        self.journals: dict[str, list[JournalEvent]] = {}

    def __len__(self) -> int:
        return len(self.entries)


class MemoryStore:
    """OperationStore over a :class:`MemoryData`.

    Args:
        clock: Source of create and update times and of lease expiry.
        data: The records to serve; a new, empty database by default. Pass another
            store's ``data`` to open a second replica (or the same database after a
            restart: closing a store leaves its data alone).
    """

    def __init__(self, clock: Clock | None = None, *, data: MemoryData | None = None) -> None:
        self._clock: Clock = clock or SystemClock()
        self.data = data if data is not None else MemoryData()
        self._closed = False

    # --- the OperationStore port -------------------------------------------------------

    async def create(self, record: OperationRecord) -> tuple[OperationRecord, bool]:
        """Store ``record`` as version 1, or return the owner's record with its request id.

        Raises:
            AlreadyExists: A record with this name exists.
            FailedPrecondition: The record is over a size limit; nothing was written.
            InvalidArgument: The record has no name, or its work is not JSON.
        """
        self._check_open()
        record = for_create(record, self._now())
        entry = _entry(record)
        with self.data.lock:
            if record.request_id:
                found = self.data.by_request.get((record.owner, record.request_id))
                if found is not None:
                    return _record(self.data.entries[found]), False
            if record.name in self.data.entries:
                raise already_exists(record.name)
            self.data.entries[record.name] = entry
            if record.request_id:
                self.data.by_request[record.owner, record.request_id] = record.name
        return _record(entry), True

    async def get(self, name: str) -> OperationRecord:
        """Return a copy of the stored record, or raise NotFound."""
        self._check_open()
        with self.data.lock:
            entry = self.data.entries.get(name)
        if entry is None:
            raise not_found(name)
        return _record(entry)

    def cached(self, name: str) -> OperationRecord | None:
        """A copy of the stored record (all of it is in memory), or None when missing or
        closed (get then says why)."""
        if self._closed:
            return None
        with self.data.lock:
            entry = self.data.entries.get(name)
        return None if entry is None else _record(entry)

    async def get_many(self, names: Sequence[str]) -> builtins.list[OperationRecord | None]:
        """Copies of the stored records (None where missing), read under one hold of the lock."""
        self._check_open()
        with self.data.lock:
            entries = [self.data.entries.get(name) for name in names]
        return [None if entry is None else _record(entry) for entry in entries]

    async def list(self, query: ListQuery) -> builtins.list[OperationRecord]:
        """Return up to ``query.limit`` matching records, newest first."""
        self._check_open()
        if query.limit <= 0:
            return []
        with self.data.lock:
            entries = list(self.data.entries.values())
        selected = [entry for entry in entries if _listed(entry.record, query)]
        selected.sort(key=lambda e: (e.record.create_time_us, e.record.name), reverse=True)
        return [_record(entry) for entry in selected[: query.limit]]

    async def update(
        self, record: OperationRecord, *, journal: Sequence[JournalEvent] = ()
    ) -> OperationRecord:
        """Compare-and-set ``record`` against its version; return the stored result.

        Raises:
            Aborted: The stored version differs (someone else wrote first).
            NotFound: No such record.
            FailedPrecondition: The stored record is done, or ``record`` is over a size
                limit; nothing was written.
        """
        self._check_open()
        work = writable_work(record)
        check_journal(record.name, journal)
        now = self._now()
        with self.data.lock:
            return self._update(record, work, now, journal)

    async def update_many(
        self, records: Sequence[OperationRecord]
    ) -> builtins.list[OperationRecord | LroError]:
        """Compare-and-set each record, all under one hold of the lock (a transaction);
        see OperationStore.update_many."""
        self._check_open()
        works = batch_works(records)
        now = self._now()
        with self.data.lock:
            return update_each(records, works, lambda record, work: self._update(record, work, now))

    def _update(
        self, record: OperationRecord, work: str, now: int, journal: Sequence[JournalEvent] = ()
    ) -> OperationRecord:
        """One compare-and-set, appending ``journal`` (the caller holds the lock)."""
        stored = self._matching(record, journal)
        updated = dataclasses.replace(
            record,
            operation=_copy(record.operation),
            version=stored.version + 1,
            update_time_us=max(now, stored.update_time_us + 1),
            create_time_us=stored.create_time_us,
            owner=stored.owner,
            request_id=stored.request_id,
            method=stored.method,
            lease_holder=stored.lease_holder,
            lease_expire_us=stored.lease_expire_us,
            labels=stored.labels,
        )
        entry = _Entry(updated, work)
        self.data.entries[record.name] = entry
        if journal:
            self.data.journals.setdefault(record.name, []).extend(journal)
        return _record(entry)

    async def append(self, record: OperationRecord, journal: Sequence[JournalEvent]) -> None:
        """Append ``journal`` while the stored record is at ``record.version`` and not
        done, without writing the record; see OperationStore.append."""
        self._check_open()
        check_journal(record.name, journal)
        with self.data.lock:
            self._matching(record, journal)
            self.data.journals.setdefault(record.name, []).extend(journal)

    def _matching(
        self, record: OperationRecord, journal: Sequence[JournalEvent]
    ) -> OperationRecord:
        """The stored record, if it is at ``record.version``, not done, and none of
        ``journal``'s seqs is stored yet; else the store's error (the caller holds the
        lock)."""
        current = self.data.entries.get(record.name)
        if current is None:
            raise update_failure(record, None)
        stored = current.record
        if stored.done or stored.version != record.version:
            raise update_failure(record, (stored.version, stored.done))
        taken = {event.seq for event in self.data.journals.get(record.name, ())}
        clash = [event.seq for event in journal if event.seq in taken]
        if clash:
            raise journal_conflict(record.name, clash[0])
        return stored

    async def journal(self, name: str, after_seq: int = 0) -> builtins.list[JournalEvent]:
        """The journal events of ``name`` after ``after_seq``."""
        self._check_open()
        with self.data.lock:
            events = list(self.data.journals.get(name, ()))
        return [event for event in events if event.seq > after_seq]

    async def delete(self, name: str) -> None:
        """Forget the record (and free its request id), or raise NotFound."""
        self._check_open()
        with self.data.lock:
            entry = self.data.entries.pop(name, None)
            if entry is None:
                raise not_found(name)
            if entry.record.request_id:
                del self.data.by_request[entry.record.owner, entry.record.request_id]
            self.data.journals.pop(name, None)

    async def expired(
        self, before_us: int, after: ExpiryCursor | None, limit: int
    ) -> builtins.list[OperationRecord]:
        """Done records last changed before ``before_us``, oldest first, after ``after``."""
        self._check_open()
        with self.data.lock:
            entries = list(self.data.entries.values())
        start = after or EXPIRY_START
        found = sorted(
            (e.record for e in entries),
            key=lambda r: (r.update_time_us, r.name),
        )
        selected = [
            r
            for r in found
            if r.done and r.update_time_us < before_us and (r.update_time_us, r.name) > start
        ]
        return [dataclasses.replace(r, operation=_copy(r.operation)) for r in selected[:limit]]

    async def claim(
        self, holder: str, lease_seconds: float, limit: int
    ) -> builtins.list[OperationRecord]:
        """Lease up to ``limit`` unfinished operations to ``holder`` for ``lease_seconds``.

        Renews the holder's own leases first, then takes operations whose lease expired
        (or that never had one). Returns the claimed records, oldest first.
        """
        self._check_open()
        check_claim(holder, lease_seconds)
        if limit <= 0:
            return []
        now = self._now()
        expire = lease_expiry(now, lease_seconds)
        with self.data.lock:
            unfinished = [e for e in self.data.entries.values() if not e.record.done]
            unfinished.sort(key=lambda e: (e.record.lease_expire_us, e.record.name))
            # The holder's own leases first, so a flood of expired operations cannot make it
            # miss a renewal when ``limit`` is small; renewed ones end after ``now``.
            mine = [e for e in unfinished if e.record.lease_holder == holder][:limit]
            taken = [
                e
                for e in unfinished
                if e.record.lease_holder != holder and e.record.lease_expire_us <= now
            ][: limit - len(mine)]
            claimed = [self._lease(entry, holder, expire) for entry in mine + taken]
        claimed.sort(key=lambda e: (e.record.create_time_us, e.record.name))
        return [_record(entry) for entry in claimed]

    async def release(self, holder: str, names: Sequence[str]) -> None:
        """End ``holder``'s leases on ``names``; others' leases and unknown names are ignored."""
        self._check_open()
        with self.data.lock:
            for name in names:
                entry = self.data.entries.get(name)
                if entry is not None and entry.record.lease_holder == holder:
                    self._lease(entry, "", 0)

    async def lease_holders(self) -> dict[str, int]:
        """Unfinished operations by live lease holder ("" for nobody); see the port."""
        self._check_open()
        now = self._now()
        counts: dict[str, int] = {}
        with self.data.lock:
            for entry in self.data.entries.values():
                record = entry.record
                if not record.done:
                    holder = record.lease_holder if record.lease_expire_us > now else ""
                    counts[holder] = counts.get(holder, 0) + 1
        return counts

    async def ping(self) -> None:
        """Raise Unavailable once the store is closed."""
        self._check_open()

    async def close(self) -> None:
        """Stop serving; later calls raise Unavailable. The data stays. Idempotent."""
        self._closed = True

    # --- plumbing ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("the in-memory store is closed", reason="STORE_CLOSED")

    def _now(self) -> int:
        return to_micros(self._clock.now())

    def _lease(self, entry: _Entry, holder: str, expire_us: int) -> _Entry:
        """Store ``entry`` with a new lease (caller holds the lock); return the new entry."""
        leased = _Entry(
            dataclasses.replace(entry.record, lease_holder=holder, lease_expire_us=expire_us),
            entry.work,
        )
        self.data.entries[entry.record.name] = leased
        return leased


def _listed(record: OperationRecord, query: ListQuery) -> bool:
    """Whether ``query`` lists ``record`` (its limit aside)."""
    if query.owner is not None and record.owner != query.owner:
        return False
    after = query.after  # listing order is descending: "after" means smaller
    if after is not None and (record.create_time_us, record.name) >= (
        after.create_time_us,
        after.name,
    ):
        return False
    return matches(query.filter, filter_row(record))


def _entry(record: OperationRecord) -> _Entry:
    """The entry stored for a new ``record``, after the checks every store makes."""
    work = writable_work(record)
    return _Entry(
        dataclasses.replace(record, operation=_copy(record.operation)),
        work,
    )


def _record(entry: _Entry) -> OperationRecord:
    """A copy of the stored record that its receiver may change freely."""
    return dataclasses.replace(entry.record, operation=_copy(entry.record.operation))


def _copy(operation: operations_pb2.Operation) -> operations_pb2.Operation:
    copied = operations_pb2.Operation()
    copied.CopyFrom(operation)
    return copied
