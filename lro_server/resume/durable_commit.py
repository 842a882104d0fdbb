"""How a durable activation writes: one compare-and-set of the record with its new journal
events, conditional on the checkpoint's seq the activation started from.

Events are numbered after the journal's head as the activation knows it (the checkpoint
state's ``events`` count at the last full write, plus the events appended since); events
another writer appended meanwhile (a ResolvePromise) are read and folded in, so none is
lost or numbered twice. The record gets the method's metadata (the view of the fold) and,
for an ending, its response or error.

Quick steps in a row do not write the record: while the activation owns it and keeps its
metadata (rewritten at most every RUNNING_METADATA_SECONDS), a commit only appends its
events, conditional on the record's version (``OperationStore.append``). Any change of
the record (a cancel, a promise resolved, a heartbeat, another activation's claim) fails
that append, and a full write reads the record again and decides. A claim by another
activation leaves the version of this one's appends behind, so this one's next append
fails and it stops; what it appended before the claim is read by the claimer once its
claim is written.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lro_server._proto.lro.durable.v1 import methods_pb2
from lro_server.core import lifecycle
from lro_server.core.cas import Write, compare_and_append
from lro_server.core.clock import Clock, now_us
from lro_server.core.errors import (
    Aborted,
    Code,
    LroError,
    NotFound,
    OperationDone,
    Unavailable,
)
from lro_server.core.record import OperationRecord
from lro_server.core.store import JournalEvent, OperationStore
from lro_server.resume import durable_journal as journal
from lro_server.resume import durable_view as view
from lro_server.resume.checkpoint import Checkpoint, Wait
from lro_server.resume.commit import applied_anyway
from lro_server.resume.durable_activation import Activation
from lro_server.resume.durable_journal import Fold
from lro_server.resume.durable_payload import Payload


class Superseded(BaseException):
    """Another activation (or the end of the operation) moved it on first."""

    def __init__(self, record: OperationRecord) -> None:
        super().__init__("superseded")
        self.record = record


@dataclasses.dataclass(slots=True)
class Run:
    """An activation's view of the stored record: the base of its next write.

    Attributes:
        record: The record as last read or written.
        seq: The checkpoint seq every write is conditional on.
        events: The journal events known (stored) so far.
        payload: The operation's payload.
        activation: The activation, once the method runs.
    """

    record: OperationRecord
    seq: int
    events: int
    payload: Payload
    activation: Activation | None = None
    #: The checkpoint last read or written, and its stored bytes: a write whose fresh
    #: record holds these bytes (the first attempt, as a rule) does not decode them again.
    known: tuple[bytes, Checkpoint] | None = None
    #: Monotonic time the metadata was last rewritten while running, and with what
    #: (state, message) shown.
    shown_at: float = -1e18
    shown_progress: tuple[str, str] = ("", "")


@dataclasses.dataclass(frozen=True, slots=True)
class Waiting:
    """The method waits for these children, promises and time."""

    children: set[str]
    promises: set[str]
    wake_at_us: int


@dataclasses.dataclass(frozen=True, slots=True)
class Failure:
    """The method fails with this code and message."""

    code: Code
    message: str


#: While a method runs, its metadata (the steps shown) is rewritten at most this often;
#: waits and endings always rewrite it. Progress set by the method shows at its next commit.
RUNNING_METADATA_SECONDS = 1.0

#: What a write leaves: waiting, failed, succeeded (the response), or None: still running.
Outcome = Waiting | Failure | Any


class Writer:
    """Writes durable operations (see the module docstring)."""

    def __init__(self, store: OperationStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def write(
        self, run: Run, fold: Fold, outcome: Outcome | None, progress: tuple[str, str]
    ) -> tuple[OperationRecord, Checkpoint]:
        """One compare-and-set of the record with the activation's pending events; ``run``
        then holds the stored record and checkpoint. Raises Superseded when another
        activation (or the end of the operation) moved it on first.

        A running activation that owns the record and keeps its metadata only appends its
        events to the journal, conditional on the record's version (no record write)."""
        activation = run.activation
        current: OperationRecord | None = run.record
        if (
            outcome is None
            and activation is not None
            and activation.owned
            and activation.pending
            and run.known is not None
            and self.keeps_metadata(run, run.record, progress)
        ):
            if await self._append(run, activation):
                return run.record, run.known[1]
            current = None  # the record moved on: read it again
        claiming = activation is not None and not activation.owned
        pending = list(activation.pending) if activation is not None else []
        # What the last attempt wrote: (checkpoint, its bytes); empty after an attempt that
        # declined, so a record another writer moved on is never taken for this one's.
        written: list[tuple[Checkpoint, bytes]] = []
        activation_merged: list[tuple[int, dict[str, Any]]] = []
        attempts = 0

        async def apply(fresh: OperationRecord) -> Write | None:
            nonlocal attempts
            written.clear()
            checkpoint = self.checkpoint_of(run, fresh)
            if fresh.done or checkpoint.seq != run.seq:
                return None
            counted = int(checkpoint.state.get("events", 0))
            if counted > run.events or attempts or current is None:
                # Someone appended (a promise resolved), or this write lost a race: the
                # journal may hold events this activation has not folded yet.
                merged = fold.extend(await self.store.journal(fresh.name, after_seq=run.events))
                activation_merged.extend(merged)
                run.events = max(run.events, counted, merged[-1][0] if merged else 0)
            attempts += 1
            # The checkpoint counts the events of full writes; appends since are counted
            # by run.events (the journal's head as far as this activation knows).
            base = max(counted, run.events)
            events = [
                JournalEvent(base + index + 1, journal.encode(event))
                for index, event in enumerate(pending)
            ]
            state: dict[str, Any] = {"events": base + len(events)}
            if any(progress):
                state["progress"] = list(progress)
            record, next_checkpoint = self.decided(
                fresh, checkpoint, state, fold, outcome=outcome, progress=progress, run=run
            )
            written.append((next_checkpoint, record.checkpoint or b""))
            return record, events

        try:
            stored = await compare_and_append(self.store, run.record.name, apply, current=current)
        except Unavailable as exc:
            # Applied with its answer lost? Then the record holds this checkpoint (and the
            # journal rows went with it, in the same transaction).
            encoded = written[0][1] if written else None
            stored = await applied_anyway(self.store, run.record.name, encoded, exc)
        if not written:
            raise Superseded(stored)
        checkpoint, encoded = written[0]
        previous_seq = run.seq
        run.record, run.seq, run.known = stored, checkpoint.seq, (encoded, checkpoint)
        run.events = int(checkpoint.state["events"])
        if claiming and previous_seq > 0:
            # An activation that owned the record before may have appended after this one
            # read the journal (appends leave the version): this write stopped it, so
            # what it appended is read once and folded in.
            merged = fold.extend(await self.store.journal(stored.name, after_seq=run.events))
            activation_merged.extend(merged)
            run.events = max(run.events, merged[-1][0] if merged else 0)
        if activation is not None:
            del activation.pending[: len(pending)]
            activation.committed(activation_merged)
        return stored, checkpoint

    async def _append(self, run: Run, activation: Activation) -> bool:
        """Append the pending events (the record unchanged); False when the record moved
        on (another version, ended, gone) and a full write must decide."""
        events = [
            JournalEvent(run.events + index + 1, journal.encode(event))
            for index, event in enumerate(activation.pending)
        ]
        try:
            await self.store.append(run.record, events)
        except (Aborted, NotFound, OperationDone):
            return False
        except Unavailable as exc:
            # Applied with its answer lost? Then the journal holds these very events.
            stored = await self.store.journal(run.record.name, after_seq=run.events)
            if stored[: len(events)] != events:
                raise exc from None
        run.events += len(events)
        activation.committed([])  # the pending events are stored
        return True

    def keeps_metadata(self, run: Run, record: OperationRecord, progress: tuple[str, str]) -> bool:
        """Whether a running write leaves ``record``'s metadata as it is: rewritten less
        than RUNNING_METADATA_SECONDS ago, with the same progress and state (quick steps in
        a row; rebuilding it is most of a step's cost)."""
        live = progress[0] or "RUNNING"
        return (
            self.clock.monotonic() - run.shown_at < RUNNING_METADATA_SECONDS
            and run.shown_progress == progress
            and record.state == live
        )

    @staticmethod
    def checkpoint_of(run: Run, record: OperationRecord) -> Checkpoint:
        """The checkpoint of ``record``, decoded only when it is not the one ``run`` knows."""
        known = run.known
        if known is not None and record.checkpoint == known[0]:
            return known[1]
        checkpoint = Checkpoint.of(record)
        if record.checkpoint is not None:
            run.known = (record.checkpoint, checkpoint)
        return checkpoint

    def decided(
        self,
        fresh: OperationRecord,
        checkpoint: Checkpoint,
        state: dict[str, Any],
        fold: Fold,
        *,
        outcome: Outcome | None,
        progress: tuple[str, str],
        run: Run,
    ) -> tuple[OperationRecord, Checkpoint]:
        seq = checkpoint.seq + 1
        progress_state, message = progress
        if isinstance(outcome, Waiting):
            done_promises = sorted(p for p in outcome.promises if resolved(fold, p))
            wait = Wait(
                seq,
                tuple(sorted(outcome.children)),
                fresh.deadline_us or 2**62,
                promises=tuple(sorted(outcome.promises)),
                resolved=tuple(done_promises),
                wake_at_us=outcome.wake_at_us,
            )
            next_checkpoint = Checkpoint(checkpoint.method, seq, wait, state)
            # A timer already due is nothing to show.
            shown_timer = outcome.wake_at_us if outcome.wake_at_us > now_us(self.clock) else 0
            waits = view.waiting_on(outcome.children, outcome.promises, shown_timer)
            live = progress_state or "WAITING"
            meta = self.metadata(fresh, run.payload, fold, live, progress, waits=waits)
            record = lifecycle.with_metadata(fresh, meta, state=live)
        elif isinstance(outcome, Failure):
            live = "CANCELLED" if outcome.code == Code.CANCELLED else "FAILED"
            meta = self.metadata(fresh, run.payload, fold, live, ("", message), ended=True)
            next_checkpoint = Checkpoint(checkpoint.method, seq, None, state)
            record = lifecycle.fail(fresh, outcome.code, outcome.message, metadata=meta, state=live)
        elif outcome is not None:
            meta = self.metadata(fresh, run.payload, fold, "SUCCEEDED", ("", message), ended=True)
            next_checkpoint = Checkpoint(checkpoint.method, seq, None, state)
            record = lifecycle.succeed(fresh, outcome, metadata=meta, state="SUCCEEDED")
        else:
            live = progress_state or "RUNNING"
            next_checkpoint = Checkpoint(checkpoint.method, seq, None, state)
            if self.keeps_metadata(run, fresh, progress):
                record = fresh
            else:
                meta = self.metadata(fresh, run.payload, fold, live, progress)
                record = lifecycle.with_metadata(fresh, meta, state=live)
                run.shown_at, run.shown_progress = self.clock.monotonic(), progress
        return dataclasses.replace(record, checkpoint=next_checkpoint.encode()), next_checkpoint

    def metadata(
        self,
        record: OperationRecord,
        payload: Payload,
        fold: Fold,
        state: str,
        progress: tuple[str, str],
        *,
        waits: list[str] | None = None,
        ended: bool = False,
    ) -> methods_pb2.MethodMetadata:
        now = now_us(self.clock)
        progress_state, message = progress
        return view.metadata(
            record,
            method=payload.method,
            labels=payload.labels,
            state=progress_state if progress_state and not ended else state,
            message=message,
            shown=view.steps(fold, now, fold.last_position),
            waits=waits or [],
            now_us=now,
            ended=ended,
        )


def resolved(fold: Fold, promise: str) -> bool:
    """Whether the fold has an outcome for ``promise``."""
    try:
        _, position, _ = journal.parse_promise_id(promise)
    except LroError:
        return False
    slot = fold.slots.get(position)
    return slot is not None and slot.done
