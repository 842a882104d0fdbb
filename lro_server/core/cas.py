"""Compare-and-set with retries: the one read, apply, write loop of every writer.

Every change to a stored operation is a compare-and-set on its version. A writer that
loses to a concurrent write (a lease renewal, a CancelOperation, another replica) reads the
record again and re-applies its change to what is stored now; it never overwrites what it
did not see. ``apply`` decides from the fresh record each time, so it also sees when the
operation was finished or changed in a way that makes the change moot, and says so by
returning None.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from lro_server.core.errors import Aborted, LroError, OperationDone
from lro_server.core.record import OperationRecord
from lro_server.core.store import JournalEvent, OperationStore

#: Writes tried before giving up with Aborted (each loss means somebody else wrote).
CAS_ATTEMPTS = 20
#: Most records one batched write (one transaction) carries: a transaction of thousands of
#: rows holds its locks long (Spanner) and is more likely to lose to a concurrent writer.
BATCH_ROWS = 50

#: A change: the record to write given the stored one, or None to write nothing.
Change = Callable[[OperationRecord], OperationRecord | None]
#: A record to write and the journal events to append with it.
Write = tuple[OperationRecord, Sequence[JournalEvent]]
#: An asynchronous change (it may call out, e.g. to decide from other records).
AsyncChange = Callable[[OperationRecord], Awaitable[OperationRecord | None]]


async def compare_and_set(
    store: OperationStore,
    name: str,
    apply: Change,
    *,
    current: OperationRecord | None = None,
    attempts: int = CAS_ATTEMPTS,
) -> OperationRecord:
    """Write ``apply(record)`` over the stored record ``name``, retrying on conflict.

    Args:
        store: Where the record lives.
        name: The operation.
        apply: Builds the record to write from the stored one (same version), or returns
            None when there is nothing to write; called again after every lost race.
        current: The record as the caller last read it (saves the first read).
        attempts: Writes tried before giving up.

    Returns:
        The stored record after the write, or the record ``apply`` declined to change.

    Raises:
        Aborted: Every attempt lost a race.
        NotFound: The record does not exist (or was deleted meanwhile).
        OperationDone: The write was refused because the record is done and ``apply``
            still wanted to change it (it sees ``record.done`` and may decline instead).
    """

    async def apply_async(record: OperationRecord) -> OperationRecord | None:
        return apply(record)

    return await compare_and_set_async(store, name, apply_async, current=current, attempts=attempts)


async def compare_and_set_async(
    store: OperationStore,
    name: str,
    apply: AsyncChange,
    *,
    current: OperationRecord | None = None,
    attempts: int = CAS_ATTEMPTS,
) -> OperationRecord:
    """:func:`compare_and_set` with an asynchronous ``apply``."""

    async def without_journal(record: OperationRecord) -> Write | None:
        changed = await apply(record)
        return None if changed is None else (changed, ())

    return await compare_and_append(
        store, name, without_journal, current=current, attempts=attempts
    )


async def compare_and_append(
    store: OperationStore,
    name: str,
    apply: Callable[[OperationRecord], Awaitable[Write | None]],
    *,
    current: OperationRecord | None = None,
    attempts: int = CAS_ATTEMPTS,
) -> OperationRecord:
    """:func:`compare_and_set_async` whose ``apply`` also returns journal events to append
    in the same transaction (numbered from the record it saw: a lost race renumbers)."""
    record = current if current is not None else await store.get(name)
    for _ in range(attempts):
        changed = await apply(record)
        if changed is None:
            return record
        if record.done:
            raise _done(name)
        written, journal = changed
        try:
            return await store.update(written, journal=journal)
        except (Aborted, OperationDone):
            # Somebody else wrote (or finished it) since the read: decide again on theirs.
            record = await store.get(name)
    raise Aborted(f"{name} changed too often to be written; retry", metadata={"name": name})


async def compare_and_set_many(
    store: OperationStore,
    changes: Sequence[tuple[OperationRecord, Change]],
    *,
    attempts: int = CAS_ATTEMPTS,
) -> list[OperationRecord | LroError]:
    """:func:`compare_and_set` of many records, their first writes in one transaction per
    :data:`BATCH_ROWS` records.

    Each change is applied to the record as the caller read it (``current``) and the
    records to write go to the store in batches (``update_many``). A row that lost its
    race is re-read and written alone with :func:`compare_and_set` (the change decides
    again on the winner's record), so the batch is the fast path and never weakens
    compare-and-set.

    Args:
        store: Where the records live.
        changes: (record as last read, change) per operation; names must be distinct.
        attempts: Writes tried per record before giving up.

    Returns:
        For each change, in order: the stored record after the write, the record the
        change declined to change, or the error that record's write ended with (Aborted
        after ``attempts`` lost races, NotFound, OperationDone, FailedPrecondition, or
        Unavailable when its second try could not reach the store).

    Raises:
        Unavailable: The store could not be reached (what was written is unknown; each
            change may be tried again).
    """
    results: list[OperationRecord | LroError] = []
    batch: list[OperationRecord] = []
    slots: list[int] = []
    for index, (record, apply) in enumerate(changes):
        changed = apply(record)
        if changed is None:
            results.append(record)
        elif record.done:
            results.append(_done(record.name))
        else:
            results.append(record)  # replaced below
            batch.append(changed)
            slots.append(index)
    written: list[OperationRecord | LroError] = []
    for start in range(0, len(batch), BATCH_ROWS):
        written += await store.update_many(batch[start : start + BATCH_ROWS])
    for index, outcome in zip(slots, written, strict=True):
        results[index] = outcome
        if isinstance(outcome, Aborted | OperationDone):
            # Lost to another writer: decide again on its record, alone.
            record, apply = changes[index]
            try:
                results[index] = await compare_and_set(store, record.name, apply, attempts=attempts)
            except LroError as exc:  # e.g. Unavailable: this row's write is unknown
                results[index] = exc
    return results


def _done(name: str) -> OperationDone:
    return OperationDone(f"operation {name} is done and cannot change", metadata={"name": name})
