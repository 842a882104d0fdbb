"""What a poll writes: the compare-and-set changes of a start, a deferral, a sent cancel,
an observation, a timeout and a refusal.

Each change is a plain function of the stored record (see :mod:`lro_server.core.cas`),
applied again to what is stored now when a write loses its race; it returns None when
there is nothing left to write (the operation is done, or the change is there already).
The :class:`~lro_server.databricks.tracker_poll.Poller` decides which to write.
"""

from __future__ import annotations

import dataclasses

from google.protobuf.message import Message

from lro_server.core import lifecycle
from lro_server.core.cas import Change
from lro_server.core.clock import Clock, to_micros
from lro_server.core.errors import Code, LroError
from lro_server.core.record import OperationRecord
from lro_server.databricks.convert import START_DEFERRED, deferred, undeferred
from lro_server.databricks.family import Observation, Verdict
from lro_server.databricks.tracker_state import differs, unpack_metadata
from lro_server.databricks.work import Entity, Work


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """What a poll writes for an observation.

    Attributes:
        change: The compare-and-set change to write; None when nothing changed.
        verdict: The observation's verdict (done: the write finishes the operation).
        changed: Whether the entity changed (resets the poll interval).
    """

    change: Change | None
    verdict: Verdict
    changed: bool


def decide(record: OperationRecord, observation: Observation, now_us: int) -> Decision:
    """What to write for ``observation`` of ``record`` at ``now_us`` (nothing if nothing
    changed)."""
    metadata = observation.metadata
    _touch(metadata, now_us)
    verdict = observation.verdict
    if not verdict.done:
        changed = observation.state != record.state or differs(
            unpack_metadata(record.operation.metadata), metadata
        )
        new_ids = observation.entity is not None or observation.repairs is not None
        if new_ids or changed:
            return Decision(_observed(observation), verdict, changed=True)
        return Decision(None, verdict, changed=False)

    def finished(fresh: OperationRecord) -> OperationRecord | None:
        if fresh.done:
            return None
        fresh = _with_work(fresh, observation)
        if verdict.succeeded and observation.response is not None:
            return lifecycle.succeed(
                fresh, observation.response, metadata=metadata, state=observation.state
            )
        message = verdict.message
        if fresh.cancel_requested and verdict.code == Code.CANCELLED:
            message = f"operation cancelled: {message}" if message else "operation cancelled"
        return lifecycle.fail(
            fresh,
            verdict.code,
            message,
            details=observation.details,
            metadata=metadata,
            state=observation.state,
        )

    return Decision(finished, verdict, changed=True)


def started(entity: Entity) -> Change:
    """The change storing the ``entity`` a start answered with (and ending a deferral)."""

    def apply(fresh: OperationRecord) -> OperationRecord | None:
        work = Work.of(fresh)
        if fresh.done or work.started:
            return None  # finished meanwhile, or another poll stored it first
        fresh = dataclasses.replace(work, entity=entity).stored_in(fresh)
        if fresh.state != START_DEFERRED:
            return fresh
        metadata = unpack_metadata(fresh.operation.metadata)
        if metadata is None:
            return dataclasses.replace(fresh, state="")
        return lifecycle.with_metadata(fresh, undeferred(metadata), state="")

    return apply


def waiting(error: LroError, clock: Clock) -> Change:
    """The change marking a start deferred by ``error`` (state and message); the start is
    retried by later polls with the same idempotency token."""
    message = (
        f"{error.message}; the start is retried with the same idempotency token, "
        "so the work starts once"
    )

    def apply(fresh: OperationRecord) -> OperationRecord | None:
        metadata = unpack_metadata(fresh.operation.metadata)
        if fresh.done or Work.of(fresh).started or metadata is None:
            return None
        marked = deferred(metadata, message)
        if fresh.state == START_DEFERRED and marked == metadata:
            return None
        _touch(marked, to_micros(clock.now()))
        return lifecycle.with_metadata(fresh, marked, state=START_DEFERRED)

    return apply


def cancel_sent(fresh: OperationRecord) -> OperationRecord | None:
    """The change noting that the cancel went to Databricks."""
    work = Work.of(fresh)
    if fresh.done or work.cancel_sent:
        return None
    return dataclasses.replace(work, cancel_sent=True).stored_in(fresh)


def timed_out(timeout_seconds: float) -> Change:
    """The change failing an operation past its deadline (its work was cancelled)."""
    message = (
        f"operation did not finish within its timeout of {timeout_seconds:g}s; "
        "the work was cancelled"
    )
    return lambda fresh: (
        None
        if fresh.done
        else lifecycle.fail(fresh, Code.DEADLINE_EXCEEDED, message, state="TIMED_OUT")
    )


def failed(error: LroError) -> Change:
    """The change failing an operation with ``error`` (Databricks refused for good)."""
    return lambda fresh: None if fresh.done else lifecycle.fail(fresh, error.code, error.message)


def _observed(observation: Observation) -> Change:
    """The change writing a pending observation: metadata, live state and new entity ids."""

    def apply(fresh: OperationRecord) -> OperationRecord | None:
        if fresh.done:
            return None
        fresh = _with_work(fresh, observation)
        return lifecycle.with_metadata(fresh, observation.metadata, state=observation.state)

    return apply


def _with_work(fresh: OperationRecord, observation: Observation) -> OperationRecord:
    """``fresh`` with the entity ids and repairs the observation brought, if any."""
    if observation.entity is None and observation.repairs is None:
        return fresh
    work = Work.of(fresh)
    if observation.entity is not None:
        work = dataclasses.replace(work, entity=observation.entity)
    if observation.repairs is not None:
        work = dataclasses.replace(work, repairs=observation.repairs)
    return work.stored_in(fresh)


def _touch(metadata: Message, now_us: int) -> None:
    if "update_time" in metadata.DESCRIPTOR.fields_by_name:
        getattr(metadata, "update_time").FromMicroseconds(now_us)  # noqa: B009  any family
