"""ResolvePromise: append a promise's outcome to its operation's journal, once.

The promise id (``<operation id>.<position>.<secret>``) locates the promise; the secret is
compared in constant time and every mismatch is the same NOT_FOUND as a missing promise.
The outcome is appended in one compare-and-set with the operation: numbered after the
events stored, it marks the promise resolved in the current wait (without a new wait id,
so a waiter's resume of that wait still counts). A second answer changes nothing.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lro_server._proto.lro.durable.v1 import methods_pb2
from lro_server.core.cas import Write, compare_and_append
from lro_server.core.errors import Code, FailedPrecondition, LroError
from lro_server.core.names import operation_id
from lro_server.core.record import OperationRecord
from lro_server.core.store import JournalEvent, OperationStore
from lro_server.resume import durable_journal as journal
from lro_server.resume import durable_view as view
from lro_server.resume.checkpoint import Checkpoint
from lro_server.resume.durable_journal import Fold
from lro_server.resume.durable_payload import FAMILY
from lro_server.resume.method import read

_PromiseState = methods_pb2.Promise.State


async def resolve(
    store: OperationStore, promise: str, value: Any, error: tuple[int, str] | None
) -> tuple[methods_pb2.Promise, OperationRecord | None]:
    """Resolve (``value``) or reject (``error``) ``promise``. Returns the promise as stored
    and, when this call resolved it, the operation as written (None otherwise)."""
    parent, position, secret = journal.parse_promise_id(promise)
    record = await read(store, parent)
    if record is None or record.family != FAMILY:
        raise journal.unknown_promise()
    fold = Fold(await store.journal(parent))
    slot = fold.slots.get(position)
    if not journal.secret_matches(slot, secret):
        raise journal.unknown_promise()
    assert slot is not None
    if slot.done:
        return _promise(promise, parent, slot), None
    outcome: dict[str, Any] = (
        {"error": journal.error_json(*error)} if error is not None else {"value": value}
    )
    event = {"kind": journal.PROMISE_RESOLVED, "pos": position, **outcome}
    known = [fold.seq]
    ended: list[bool] = []
    attempts = [0]

    async def apply(fresh: OperationRecord) -> Write | None:
        if fresh.done:
            ended.append(True)
            return None
        checkpoint = Checkpoint.of(fresh)
        counted = int(checkpoint.state.get("events", 0))
        if counted > known[0] or attempts[0]:
            # The checkpoint does not count what the method appended since its last full
            # write: after a lost race (its seq taken) the journal is read again.
            fold.extend(await store.journal(parent, after_seq=known[0]))
            known[0] = max(counted, fold.seq)
        attempts[0] += 1
        base = max(counted, known[0])
        if slot.done:
            return None
        wait = checkpoint.wait
        if wait is not None and promise in wait.promises and promise not in wait.resolved:
            wait = dataclasses.replace(wait, resolved=(*wait.resolved, promise))
        state = {**checkpoint.state, "events": base + 1}
        updated = dataclasses.replace(checkpoint, wait=wait, state=state)
        written = dataclasses.replace(fresh, checkpoint=updated.encode())
        return written, [JournalEvent(base + 1, journal.encode(event))]

    stored = await compare_and_append(store, parent, apply, current=record)
    if slot.done:  # another answer came first
        return _promise(promise, parent, slot), None
    if ended:
        raise _operation_done(parent)
    fold.apply(0, event)
    return _promise(promise, parent, slot), stored


def _promise(promise: str, parent: str, slot: journal.Slot) -> methods_pb2.Promise:
    found = methods_pb2.Promise(name=promise, operation=parent, state=_PromiseState.PENDING)
    if slot.done and slot.error is not None:
        found.state = _PromiseState.REJECTED
        found.error.code = int(slot.error.get("code", Code.UNKNOWN))
        found.error.message = str(slot.error.get("message", ""))
    elif slot.done:
        found.state = _PromiseState.RESOLVED
        found.value.CopyFrom(view.to_value(slot.result))
    return found


def _operation_done(parent: str) -> LroError:
    return FailedPrecondition(
        f"the operation {operation_id(parent)} of this promise has ended",
        reason="OPERATION_DONE",
    )
