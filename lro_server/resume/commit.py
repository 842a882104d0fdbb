"""The compare-and-set writes of a resume: a decision, a re-wait, a waiter's handle.

Each applies only while the record is still at the checkpoint it was decided on (not
done, no other commit since): losing to another resume of the same wait leaves that
resume's decision standing; losing to any other writer (a CancelOperation, a lease) makes
the same change again on the fresh record. A write the store applied but whose answer it
lost (Unavailable after the write) is recognised by its checkpoint in the stored record,
so it is followed up like any other (its wait handed off), never left unwatched.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from lro_server.core.cas import compare_and_set
from lro_server.core.errors import LroError, Unavailable
from lro_server.core.record import OperationRecord
from lro_server.core.store import OperationStore
from lro_server.resume.checkpoint import Checkpoint
from lro_server.resume.method import Advance, Committed

_log = logging.getLogger(__name__)


class WhileAt:
    """A compare-and-set change that applies only while the record is still at
    ``checkpoint`` (not done, no other commit since); ``wrote`` tells afterwards whether
    it was written (the last decision of a compare-and-set is the one that stood)."""

    def __init__(
        self, checkpoint: Checkpoint, change: Callable[[OperationRecord], OperationRecord]
    ) -> None:
        self._seq = checkpoint.seq
        self._change = change
        self.wrote = False

    def __call__(self, fresh: OperationRecord) -> OperationRecord | None:
        self.wrote = not fresh.done and Checkpoint.of(fresh).seq == self._seq
        return self._change(fresh) if self.wrote else None


async def applied_anyway(
    store: OperationStore, name: str, checkpoint: bytes | None, error: Unavailable
) -> OperationRecord:
    """After ``error`` from a write of ``checkpoint``: the stored record when it holds that
    checkpoint (the write was applied, only its answer was lost); else raise ``error``."""
    stored = await store.get(name)
    if checkpoint is None or stored.checkpoint != checkpoint:
        raise error
    return stored


async def commit(
    store: OperationStore, record: OperationRecord, checkpoint: Checkpoint, advance: Advance
) -> Committed:
    """Write ``advance``, decided on ``record`` at ``checkpoint``; ``wrote`` is False when
    another resume of the same wait moved on first (its decision stands: the children
    this one may have started are the same operations, by request id)."""
    committed = checkpoint.committed(
        state=advance.state, wait_on=advance.wait_on or None, deadline_us=record.deadline_us
    )
    encoded = committed.encode()
    change = WhileAt(checkpoint, lambda fresh: advance.applied_to(fresh, encoded))
    try:
        stored = await compare_and_set(store, record.name, change, current=record)
    except Unavailable as exc:
        stored = await applied_anyway(store, record.name, encoded, exc)
        change.wrote = True
    return Committed(stored, committed, advance.cancel, wrote=change.wrote)


async def rewait(
    store: OperationStore, record: OperationRecord, checkpoint: Checkpoint
) -> Committed:
    """Start the wait of ``checkpoint`` again under a new id (its waiter gave up);
    ``wrote`` is False when the operation was resumed or finished meanwhile."""
    rewaited = checkpoint.rewaited()
    encoded = rewaited.encode()
    change = WhileAt(checkpoint, lambda fresh: dataclasses.replace(fresh, checkpoint=encoded))
    stored = await compare_and_set(store, record.name, change, current=record)
    return Committed(stored, rewaited, wrote=change.wrote)


async def record_handle(store: OperationStore, name: str, wait_id: int, handle: str) -> None:
    """Keep the waiter's ``handle`` of wait ``wait_id`` in the checkpoint, while that wait
    is current; a failure is only logged (the handle is a hint for a restart, which then
    launches a second waiter)."""

    def handed(fresh: OperationRecord) -> OperationRecord | None:
        checkpoint = Checkpoint.of(fresh)
        if fresh.done or checkpoint.wait is None or checkpoint.wait.id != wait_id:
            return None
        return dataclasses.replace(fresh, checkpoint=checkpoint.handed_to(handle).encode())

    try:
        await compare_and_set(store, name, handed)
    except LroError as exc:
        _log.warning("%s: recording the waiter handle failed: %s", name, exc)
