"""The OperationStore port: what every backend (SQLite, Spanner, in-memory) implements.

Semantics every backend must share (tests/conformance/test_store.py proves them):

- ``create`` stores version 1. A non-empty ``request_id`` is unique per owner: creating a
  second record with the same (owner, request_id) stores nothing and returns the first one
  with ``created=False`` (AIP-155).
- ``update`` is compare-and-set: it succeeds only if the stored version equals
  ``record.version``, then stores ``version + 1`` and the new update time. A conflict raises
  Aborted; a missing record NotFound; a stored record that is done OperationDone (a
  FailedPrecondition: a done operation never changes again). Every error a backend raises
  carries ``origin=Origin.STORE``.
- ``update_many`` is ``update`` of several records in one transaction: each row is still
  compare-and-set on its own version, and a row that fails (its error is returned in its
  place) neither stops nor undoes the others. Only a failure of the store itself raises.
- ``update`` may append events to the operation's journal (``journal=``) in the same
  transaction as the compare-and-set: both are written, or neither. Journal events are
  rows of their own beside the operation (``(name, seq)``, ``seq`` from 1), so appending
  costs what the new events weigh, never a rewrite of the journal. A ``seq`` already
  stored raises Aborted; an event over :data:`MAX_JOURNAL_EVENT_BYTES` raises
  FailedPrecondition; nothing is written in either case. ``journal(name, after_seq)``
  reads the events after ``after_seq`` in ``seq`` order; ``delete`` removes them too.
- ``cached`` answers a read from the store's memory only when the answer is exact (what
  ``get`` would return at that moment), else None: never an older version, never a
  deleted record.
- ``list`` orders by (create_time_us DESC, name DESC) and resumes strictly after a cursor.
- ``claim`` hands unfinished operations to one replica at a time (leases);
  ``lease_holders`` counts them by holder.
- Oversized records raise FailedPrecondition before anything is written
  (:func:`lro_server.core.work_column.writable_work`).
- A backend that cannot be reached raises Unavailable.
- ``expired`` lists done records by (update time, name), oldest first; unfinished ones
  never. ``delete`` also forgets the record's labels.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable, Sequence
from typing import Protocol

from lro_server.core.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    LroError,
    NotFound,
    OperationDone,
    Origin,
)
from lro_server.core.filter import Expr
from lro_server.core.pagetoken import Cursor
from lro_server.core.record import OperationRecord
from lro_server.core.work_column import writable_work

#: Largest journal event a store accepts (events are small facts: a step's result of a
#: few KB is typical; Spanner cells stop at 10 MiB).
MAX_JOURNAL_EVENT_BYTES = 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class JournalEvent:
    """One event of an operation's journal (durable methods record what happened here).

    Attributes:
        seq: Position of the event in the journal, from 1, gapless.
        data: The event, language-neutral text (a compact JSON object).
    """

    seq: int
    data: str


@dataclasses.dataclass(frozen=True, slots=True)
class ListQuery:
    """One page of a listing.

    Attributes:
        filter: Parsed AIP-160 filter, or None for all.
        owner: Only this owner's operations; None for every owner (admins).
        after: Resume strictly after this position, or None from the start.
        limit: Maximum number of records to return.
    """

    filter: Expr | None
    owner: str | None
    after: Cursor | None
    limit: int


#: Position in an ``expired`` walk: (update_time_us, name) of the last record seen.
ExpiryCursor = tuple[int, str]
#: Where an ``expired`` walk without a cursor starts: before every record.
EXPIRY_START: ExpiryCursor = (-1, "")


class OperationStore(Protocol):
    """Persistent operations. Methods are coroutines; backends decide where work runs."""

    async def create(self, record: OperationRecord) -> tuple[OperationRecord, bool]:
        """Store a new record; return (stored record, created). See module docstring."""
        ...

    async def get(self, name: str) -> OperationRecord:
        """Return the record (strong read), or raise NotFound."""
        ...

    def cached(self, name: str) -> OperationRecord | None:
        """The record ``get`` would return now, when the store holds it in memory and
        knows it is current; None when only ``get`` can tell (not held, not known to be
        current, or missing: never NotFound). Synchronous and without I/O: GetOperation
        asks this first and awaits ``get`` only on None."""
        ...

    async def get_many(self, names: Sequence[str]) -> builtins.list[OperationRecord | None]:
        """The records of ``names`` (strong reads, in one round trip where the backend can),
        in order; None for a name with no record."""
        ...

    async def list(self, query: ListQuery) -> builtins.list[OperationRecord]:
        """Return up to ``query.limit`` records matching the query, in listing order."""
        ...

    async def update(
        self, record: OperationRecord, *, journal: Sequence[JournalEvent] = ()
    ) -> OperationRecord:
        """Compare-and-set ``record`` against its version and append ``journal`` to its
        journal, in one transaction; return the stored result."""
        ...

    async def append(self, record: OperationRecord, journal: Sequence[JournalEvent]) -> None:
        """Append ``journal`` to the journal of ``record.name`` while the stored record is
        still at ``record.version`` and not done, in one transaction, without writing the
        record: its version and update time stay as they are.

        Raises as :meth:`update` does: Aborted (the stored version differs, or a journal
        event's seq is stored already), NotFound, OperationDone; InvalidArgument or
        FailedPrecondition for events no store may keep (nothing written).
        """
        ...

    async def journal(self, name: str, after_seq: int = 0) -> builtins.list[JournalEvent]:
        """The journal events of ``name`` with ``seq > after_seq``, in ``seq`` order (empty
        for an operation without journal or a missing one)."""
        ...

    async def update_many(
        self, records: Sequence[OperationRecord]
    ) -> builtins.list[OperationRecord | LroError]:
        """Compare-and-set every record, in one transaction (one commit for the batch).

        Returns, in order, what ``update`` would have returned for each record, or the
        error it would have raised (Aborted, NotFound, OperationDone, FailedPrecondition
        for a record over a size limit); the other records are written regardless. Raises
        InvalidArgument (writing nothing) when a name appears twice, Unavailable when the
        store cannot be reached (nothing, or everything, may have been written).
        """
        ...

    async def delete(self, name: str) -> None:
        """Forget the record, or raise NotFound."""
        ...

    async def expired(
        self, before_us: int, after: ExpiryCursor | None, limit: int
    ) -> builtins.list[OperationRecord]:
        """Up to ``limit`` done records last changed before ``before_us``, ordered by
        (update_time_us, name), strictly after ``after`` (None: from the oldest)."""
        ...

    async def claim(
        self, holder: str, lease_seconds: float, limit: int
    ) -> builtins.list[OperationRecord]:
        """Lease unfinished operations to ``holder``: those it holds (renewed) or whose lease
        has expired, at most ``limit``. Returns the claimed records."""
        ...

    async def release(self, holder: str, names: builtins.list[str]) -> None:
        """End ``holder``'s leases on ``names`` so another replica may take them at once."""
        ...

    async def lease_holders(self) -> dict[str, int]:
        """Unfinished operations by the holder of their live lease; those nobody holds now
        (never leased, released, or their lease expired) are counted under ``""``. Replicas
        size their share of the work from it."""
        ...

    async def ping(self) -> None:
        """Raise Unavailable when the backend cannot serve."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...


def not_found(name: str, *, origin: Origin = Origin.STORE) -> NotFound:
    """The error of every store (and the service) for a missing operation."""
    return NotFound(f"operation {name} not found", metadata={"name": name}, origin=origin)


def already_exists(name: str) -> AlreadyExists:
    """The error of every store when ``create`` meets a record of the same name."""
    return AlreadyExists(
        f"operation {name} already exists", metadata={"name": name}, origin=Origin.STORE
    )


def update_failure(record: OperationRecord, stored: tuple[int, bool] | None) -> LroError:
    """Why a compare-and-set of ``record`` matched no row, from the stored (version, done)
    read in the same transaction (None: no such row)."""
    if stored is None:
        return not_found(record.name)
    version, done = stored
    if done:
        return OperationDone(
            f"operation {record.name} is done and cannot change",
            metadata={"name": record.name},
            origin=Origin.STORE,
        )
    return Aborted(
        f"operation {record.name} is at version {version}, not {record.version}",
        metadata={"name": record.name, "version": str(version)},
        origin=Origin.STORE,
    )


def distinct_names(records: Sequence[OperationRecord]) -> None:
    """Raise InvalidArgument when two of ``records`` name the same operation (a batch write
    could not compare-and-set both against one stored version)."""
    names = [record.name for record in records]
    if len(set(names)) != len(names):
        raise InvalidArgument(
            "a batch of updates names the same operation twice", origin=Origin.STORE
        )


def batch_works(records: Sequence[OperationRecord]) -> builtins.list[str | LroError]:
    """The ``work`` column each record of an ``update_many`` batch writes, or the error that
    keeps the record out of the batch (over a size limit, work that is not JSON).

    Raises:
        InvalidArgument: Two records name the same operation (see :func:`distinct_names`).
    """
    distinct_names(records)
    works: builtins.list[str | LroError] = []
    for record in records:
        try:
            works.append(writable_work(record))
        except LroError as exc:
            works.append(exc)
    return works


def update_each(
    records: Sequence[OperationRecord],
    works: Sequence[str | LroError],
    compare_and_set: Callable[[OperationRecord, str], OperationRecord],
) -> builtins.list[OperationRecord | LroError]:
    """Each record's ``compare_and_set(record, work)`` inside the caller's transaction, in
    order: its stored result, or the error it raised or its work carries (one record's
    failure neither stops nor undoes the others)."""
    results: builtins.list[OperationRecord | LroError] = []
    for record, work in zip(records, works, strict=True):
        if isinstance(work, LroError):
            results.append(work)
            continue
        try:
            results.append(compare_and_set(record, work))
        except LroError as exc:
            results.append(exc)
    return results


def check_claim(holder: str, lease_seconds: float) -> None:
    """Refuse a claim without a holder, or for a lease that is not positive."""
    if not holder:
        raise InvalidArgument("holder is required", metadata={"field": "holder"})
    if lease_seconds <= 0:
        raise InvalidArgument("lease_seconds must be positive")


def lease_expiry(now_us: int, lease_seconds: float) -> int:
    """When a lease taken at ``now_us`` for ``lease_seconds`` ends (microseconds)."""
    return now_us + round(lease_seconds * 1_000_000)


def check_journal(name: str, events: Sequence[JournalEvent]) -> None:
    """Refuse (before anything is written) journal events no store may keep: seqs that
    are not positive and increasing, or an event over :data:`MAX_JOURNAL_EVENT_BYTES`."""
    previous = 0
    for event in events:
        if event.seq <= previous:
            raise InvalidArgument(
                f"journal events of {name} must have increasing positive seqs",
                metadata={"name": name, "seq": str(event.seq)},
            )
        previous = event.seq
        size = len(event.data.encode())
        if size > MAX_JOURNAL_EVENT_BYTES:
            raise FailedPrecondition(
                f"journal event {event.seq} of {name} is {size} bytes, over the limit of "
                f"{MAX_JOURNAL_EVENT_BYTES} bytes",
                reason="SIZE_LIMIT_EXCEEDED",
                metadata={"field": "journal", "limit_bytes": str(MAX_JOURNAL_EVENT_BYTES)},
            )


def journal_conflict(name: str, seq: int) -> Aborted:
    """The error of every store when a journal event's seq is stored already."""
    return Aborted(
        f"journal event {seq} of {name} exists already",
        metadata={"name": name, "seq": str(seq)},
        origin=Origin.STORE,
    )
