"""The durable engine: user methods as resumable operations, run by the Resumer.

A durable operation is a resumable operation whose checkpoint says where it waits and
whose journal is rows beside it. The :class:`DurableEngine` is the ResumableMethod of
``lro.durable.v1.Methods/Start``: ``begin`` stores a wait that is due at once (so Start
answers without running user code), and every ``resume`` replays the method
(:class:`~lro_server.resume.durable_activation.Activation`) and writes what happened
itself, journal events and record in one compare-and-set (it returns ``Committed``):

- every write is conditional on the checkpoint's ``seq`` the activation started from: a
  second activation of the same wait loses its first write and stops before any effect;
- journal events are numbered from the checkpoint state's ``events`` count at the time
  of the write; events another writer appended meanwhile (a ResolvePromise) are read
  and folded in, so nothing is lost or numbered twice.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from google.longrunning import operations_pb2

from lro_server._proto.lro.durable.v1 import methods_pb2
from lro_server.core import lifecycle
from lro_server.core.cas import Write, compare_and_append, compare_and_set
from lro_server.core.clock import Clock, SystemClock, now_us
from lro_server.core.errors import (
    Code,
    FailedPrecondition,
    Internal,
    LroError,
    NotFound,
    Unavailable,
)
from lro_server.core.names import operation_id
from lro_server.core.record import OperationRecord
from lro_server.core.store import JournalEvent, OperationStore
from lro_server.durable.context import Context
from lro_server.durable.errors import OperationFailed
from lro_server.durable.method import DurableMethod
from lro_server.resume import durable_journal as journal
from lro_server.resume import durable_view as view
from lro_server.resume.checkpoint import Checkpoint, Wait
from lro_server.resume.durable_activation import (
    HEARTBEAT_SECONDS,
    Activation,
    Drift,
    Intent,
    Stop,
    Suspend,
)
from lro_server.resume.durable_journal import Fold
from lro_server.resume.method import Committed, Resumption

_log = logging.getLogger(__name__)

SERVICE = "lro.durable.v1.Methods"
#: The record's ``method`` of durable operations.
START_METHOD = f"{SERVICE}/Start"
#: What waiters call to resume one.
RESUME_METHOD = f"{SERVICE}/Resume"
#: The records' ``family`` (routes them to the Resumer).
FAMILY = "durable"


@dataclasses.dataclass(frozen=True, slots=True)
class Payload:
    """A durable operation's payload: the method to run, its input and labels."""

    method: str
    input: dict[str, Any]
    labels: dict[str, str] = dataclasses.field(default_factory=dict)

    def encode(self) -> str:
        """The stored form (the record's ``payload``)."""
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @staticmethod
    def of(record: OperationRecord) -> Payload:
        """The payload of ``record``."""
        try:
            found = json.loads(record.payload)
            return Payload(
                str(found["method"]), dict(found["input"]), dict(found.get("labels") or {})
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise Internal(f"{record.name}: unreadable durable payload: {exc}") from exc


class StartChild(Protocol):
    """Starts a child operation through the server's own methods (built in api/)."""

    async def __call__(
        self, method: str, request: dict[str, Any], *, owner: str, request_id: str, name: str
    ) -> operations_pb2.Operation:
        """Start ``method`` with ``request`` as ``owner``; the child is named ``name``."""
        ...


class _Superseded(BaseException):
    def __init__(self, record: OperationRecord) -> None:
        super().__init__("superseded")
        self.record = record


@dataclasses.dataclass(slots=True)
class _Run:
    """An activation's view of the stored record: the base of its next write."""

    record: OperationRecord
    seq: int
    events: int
    payload: Payload
    activation: Activation | None = None


class DurableEngine:
    """The ResumableMethod behind every durable method, and the activations' Host.

    Args:
        store: The (observed) operation store.
        methods: The loaded durable methods, by name.
        start_child: Starts children through the server's methods.
        clock: Time of timers, deadlines and metadata.
    """

    method = START_METHOD
    resume_method = RESUME_METHOD
    metadata_type = methods_pb2.MethodMetadata.DESCRIPTOR.full_name
    #: A running operation found without a live activation is begun again (recovery).
    restartable = True

    def __init__(
        self,
        store: OperationStore,
        methods: Mapping[str, DurableMethod],
        start_child: StartChild,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.methods = dict(methods)
        self.start_child_call = start_child
        self.clock = clock or SystemClock()
        #: Operations with an activation running in this process.
        self.active: set[str] = set()
        #: Called with a record whose wait a resolved promise may have made ready.
        self.on_resolved: Callable[[OperationRecord], None] = lambda record: None
        self._runs: dict[int, _Run] = {}

    # -- ResumableMethod -------------------------------------------------------------------

    def initial(self, record: OperationRecord) -> tuple[Mapping[str, Any], Any]:
        """No events yet; metadata PENDING."""
        payload = Payload.of(record)
        return {"events": 0}, self._metadata(record, payload, Fold(), "PENDING", ("", ""))

    async def begin(self, parent: OperationRecord, state: Mapping[str, Any]) -> Committed:
        """Store a wait that is due now: the first activation runs in the background, so
        Start answers at once. Also used to start a running operation again after its
        replica died (its activation was lost)."""
        if parent.name in self.active:
            return Committed(parent, Checkpoint.of(parent), wrote=False)
        checkpoint = Checkpoint.of(parent)
        run = _Run(
            parent, checkpoint.seq, int(checkpoint.state.get("events", 0)), Payload.of(parent)
        )
        fold = Fold(await self.store.journal(parent.name)) if run.events else Fold()
        now = now_us(self.clock)
        return await self._finish(run, fold, _Waiting(set(), set(), now), ("", ""))

    async def resume(self, resumption: Resumption) -> Committed:
        """Replay the method; commit what happened and where it waits now."""
        record = resumption.parent
        if record.name in self.active:
            return Committed(record, Checkpoint.of(record), wrote=False)
        self.active.add(record.name)
        try:
            return await self._activate(resumption)
        finally:
            self.active.discard(record.name)

    async def _activate(self, resumption: Resumption) -> Committed:
        record = resumption.parent
        checkpoint = Checkpoint.of(record)
        payload = Payload.of(record)
        run = _Run(record, checkpoint.seq, int(checkpoint.state.get("events", 0)), payload)
        fold = Fold(await self.store.journal(record.name))
        run.events = max(run.events, fold.seq)
        # What ctx.progress set is kept in the checkpoint's state (the metadata's state may
        # be the engine's own: PENDING, WAITING, ...).
        kept = checkpoint.state.get("progress") or ["", ""]
        progress = (str(kept[0]), str(kept[1]))
        if resumption.cancel_requested:
            return await self._end(run, fold, Code.CANCELLED, "cancelled", progress)
        if resumption.timed_out or resumption.waiter_failed:
            code = Code.DEADLINE_EXCEEDED if resumption.timed_out else Code.UNAVAILABLE
            why = (
                f"the method's timeout of {record.timeout_seconds:g}s passed"
                if resumption.timed_out
                else "the waiter could not follow its children"
            )
            return await self._end(run, fold, code, why, progress)
        method = self.methods.get(payload.method)
        if method is None:
            # Another replica may serve it (a rolling deploy): keep the wait, retry later.
            raise Unavailable(
                f"durable method {payload.method} is not loaded on this server",
                reason="METHOD_NOT_LOADED",
                metadata={"method": payload.method},
            )
        pending, missing = await self._children_outcomes(fold, resumption.children)
        activation = Activation(
            self, record.name, fold, missing=missing, clock=self.clock, progress=progress
        )
        for event in pending:
            activation.pending.append(event)
            fold.apply(0, event)
        run.activation = activation
        self._runs[id(activation)] = run
        try:
            return await self._replay(method, run, activation)
        finally:
            self._runs.pop(id(activation), None)

    async def _replay(self, method: DurableMethod, run: _Run, activation: Activation) -> Committed:
        fold = activation.fold
        try:
            result = await method.function(Context(activation), dict(run.payload.input))
        except Suspend as suspended:
            waiting = _Waiting(suspended.children, suspended.promises, suspended.wake_at_us)
            return await self._finish(run, fold, waiting, activation.progress_state)
        except Drift as drift:
            return await self._fail(run, fold, Code.FAILED_PRECONDITION, drift.message, activation)
        except Stop as stop:
            return await self._end(run, fold, stop.code, stop.message, activation.progress_state)
        except _Superseded as superseded:
            _log.info("%s: another activation moved on first; stopping", run.record.name)
            return Committed(superseded.record, Checkpoint.of(superseded.record), wrote=False)
        except OperationFailed as failure:
            code = Code(failure.code) if failure.code in Code._value2member_map_ else Code.UNKNOWN
            if code == Code.OK:
                code = Code.UNKNOWN
            return await self._fail(run, fold, code, failure.message, activation)
        except Exception as exc:
            _log.warning("%s: the method raised", run.record.name, exc_info=exc)
            message = f"{type(exc).__name__}: {exc}"[:4000]
            return await self._fail(run, fold, Code.UNKNOWN, message, activation)
        if result is None:
            result = {}
        if not isinstance(result, Mapping):
            message = f"TypeError: the method returned {type(result).__name__}, not a dict"
            return await self._fail(run, fold, Code.UNKNOWN, message, activation)
        try:
            response = view.to_struct(json.loads(json.dumps(dict(result))))
        except (TypeError, ValueError) as exc:
            message = f"{type(exc).__name__}: the method's result is not JSON: {exc}"[:4000]
            return await self._fail(run, fold, Code.UNKNOWN, message, activation)
        if activation.positions <= fold.last_position and activation.recorded_last >= 0:
            last = activation.recorded_last
            message = (
                f"position {activation.positions}: the journal records positions up to {last}, "
                "but the method now returns before reaching them; code between awaits must "
                "be deterministic (see docs/durable.md, versioning)"
            )
            return await self._fail(run, fold, Code.FAILED_PRECONDITION, message, activation)
        committed = await self._finish(run, fold, response, activation.progress_state)
        if committed.wrote:
            await activation.start_children(raise_refusals=True)
        return committed

    async def _fail(
        self, run: _Run, fold: Fold, code: Code, message: str, activation: Activation
    ) -> Committed:
        activation.to_start.clear()  # nothing new starts for a failed method
        return await self._finish(run, fold, _Failure(code, message), activation.progress_state)

    async def _end(
        self, run: _Run, fold: Fold, code: Code, message: str, progress: tuple[str, str]
    ) -> Committed:
        """Cancel running children, then fail with ``code`` (cancel, timeout)."""
        running = await self._running_children(fold)
        committed = await self._finish(run, fold, _Failure(code, message), progress)
        return (
            dataclasses.replace(committed, cancel=tuple(running)) if committed.wrote else committed
        )

    # -- Host ------------------------------------------------------------------------------

    async def commit_running(self, activation: Activation) -> None:
        """Commit the activation's pending events; it now owns the operation."""
        run = self._runs[id(activation)]
        stored, checkpoint = await self._write(
            run, activation.fold, None, activation.progress_state
        )
        run.record, run.seq = stored, checkpoint.seq
        if stored.cancel_requested:
            raise Stop(Code.CANCELLED, "cancelled")
        if stored.deadline_us and now_us(self.clock) >= stored.deadline_us:
            raise Stop(
                Code.DEADLINE_EXCEEDED,
                f"the method's timeout of {stored.timeout_seconds:g}s passed",
            )

    async def start_child(self, activation: Activation, intent: Intent) -> None:
        """Start one child as the parent's owner."""
        run = self._runs[id(activation)]
        await self.start_child_call(
            intent.method,
            intent.request,
            owner=run.record.owner,
            request_id=intent.request_id,
            name=intent.child,
        )

    async def heartbeat(self, activation: Activation) -> None:
        """Write the record unchanged (a new version and update time) every
        HEARTBEAT_SECONDS while the activation still owns it."""
        run = self._runs[id(activation)]

        def touch(fresh: OperationRecord) -> OperationRecord | None:
            alive = not fresh.done and Checkpoint.of(fresh).seq == run.seq
            return fresh if alive else None

        while True:
            await self.clock.sleep(HEARTBEAT_SECONDS)
            try:
                run.record = await compare_and_set(self.store, run.record.name, touch)
            except LroError as exc:
                _log.warning("%s: heartbeat failed: %s", run.record.name, exc)

    # -- writes ----------------------------------------------------------------------------

    async def _finish(
        self,
        run: _Run,
        fold: Fold,
        outcome: _Outcome,
        progress: tuple[str, str],
    ) -> Committed:
        try:
            stored, checkpoint = await self._write(run, fold, outcome, progress)
        except _Superseded as superseded:
            return Committed(superseded.record, Checkpoint.of(superseded.record), wrote=False)
        if isinstance(outcome, _Waiting) and run.activation is not None:
            await run.activation.start_children(raise_refusals=True)
        return Committed(stored, checkpoint)

    async def _write(
        self, run: _Run, fold: Fold, outcome: _Outcome | None, progress: tuple[str, str]
    ) -> tuple[OperationRecord, Checkpoint]:
        """One compare-and-set of the record with the activation's pending events."""
        activation = run.activation
        pending = list(activation.pending) if activation is not None else []
        written: list[Checkpoint] = []
        activation_merged: list[tuple[int, dict[str, Any]]] = []

        async def apply(fresh: OperationRecord) -> Write | None:
            checkpoint = Checkpoint.of(fresh)
            if fresh.done or checkpoint.seq != run.seq:
                return None
            base = int(checkpoint.state.get("events", 0))
            merged: list[tuple[int, dict[str, Any]]] = []
            if base > run.events:  # someone appended (a promise resolved): fold it in
                for event in await self.store.journal(fresh.name, after_seq=run.events):
                    merged.append((event.seq, json.loads(event.data)))
                    fold.apply(event.seq, merged[-1][1])
                run.events = base
            events = [
                JournalEvent(base + index + 1, journal.encode(event))
                for index, event in enumerate(pending)
            ]
            state: dict[str, Any] = {"events": base + len(events)}
            if any(progress):
                state["progress"] = list(progress)
            record, next_checkpoint = self._decided(
                fresh, checkpoint, state, fold, outcome=outcome, progress=progress, run=run
            )
            written[:] = [next_checkpoint]
            if activation is not None:
                activation_merged[:] = merged
            return record, events

        stored = await compare_and_append(self.store, run.record.name, apply, current=run.record)
        if not written or Checkpoint.of(stored).seq != written[0].seq:
            raise _Superseded(stored)
        run.events = int(written[0].state["events"])
        if activation is not None:
            del activation.pending[: len(pending)]
            activation.committed(activation_merged)
        return stored, written[0]

    def _decided(
        self,
        fresh: OperationRecord,
        checkpoint: Checkpoint,
        state: dict[str, Any],
        fold: Fold,
        *,
        outcome: _Outcome | None,
        progress: tuple[str, str],
        run: _Run,
    ) -> tuple[OperationRecord, Checkpoint]:
        seq = checkpoint.seq + 1
        progress_state, message = progress
        if isinstance(outcome, _Waiting):
            resolved = sorted(p for p in outcome.promises if _resolved(fold, p))
            wait = Wait(
                seq,
                tuple(sorted(outcome.children)),
                fresh.deadline_us or 2**62,
                promises=tuple(sorted(outcome.promises)),
                resolved=tuple(resolved),
                wake_at_us=outcome.wake_at_us,
            )
            next_checkpoint = Checkpoint(checkpoint.method, seq, wait, state)
            # A timer already due (the first move's "run now") is nothing to show.
            shown_timer = outcome.wake_at_us if outcome.wake_at_us > now_us(self.clock) else 0
            waits = view.waiting_on(outcome.children, outcome.promises, shown_timer)
            live = progress_state or ("PENDING" if checkpoint.seq == 0 else "WAITING")
            meta = self._metadata(fresh, run.payload, fold, live, progress, waits=waits)
            record = lifecycle.with_metadata(fresh, meta, state=live)
        elif isinstance(outcome, _Failure):
            live = "CANCELLED" if outcome.code == Code.CANCELLED else "FAILED"
            meta = self._metadata(fresh, run.payload, fold, live, ("", message), ended=True)
            next_checkpoint = Checkpoint(checkpoint.method, seq, None, state)
            record = lifecycle.fail(fresh, outcome.code, outcome.message, metadata=meta, state=live)
        elif outcome is not None:
            meta = self._metadata(fresh, run.payload, fold, "SUCCEEDED", ("", message), ended=True)
            next_checkpoint = Checkpoint(checkpoint.method, seq, None, state)
            record = lifecycle.succeed(fresh, outcome, metadata=meta, state="SUCCEEDED")
        else:
            live = progress_state or "RUNNING"
            meta = self._metadata(fresh, run.payload, fold, live, progress)
            next_checkpoint = Checkpoint(checkpoint.method, seq, None, state)
            record = lifecycle.with_metadata(fresh, meta, state=live)
        return dataclasses.replace(record, checkpoint=next_checkpoint.encode()), next_checkpoint

    def _metadata(
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

    # -- children --------------------------------------------------------------------------

    async def _children_outcomes(
        self, fold: Fold, known: Mapping[str, OperationRecord | None]
    ) -> tuple[list[dict[str, Any]], set[int]]:
        """CHILD_DONE events of children that ended since, and positions whose child does
        not exist (never started: the start is repeated when the replay reaches it)."""
        events: list[dict[str, Any]] = []
        missing: set[int] = set()
        for position, slot in sorted(fold.slots.items()):
            if slot.kind != journal.CALL or slot.done:
                continue
            child = known[slot.child] if slot.child in known else await self._get(slot.child)
            if child is None:
                missing.add(position)
            elif child.done:
                events.append(
                    {
                        "kind": journal.CHILD_DONE,
                        "pos": position,
                        **view.child_outcome(child.operation),
                    }
                )
        return events, missing

    async def _running_children(self, fold: Fold) -> list[str]:
        running = []
        for slot in fold.slots.values():
            if slot.kind == journal.CALL and not slot.done:
                child = await self._get(slot.child)
                if child is not None and not child.done:
                    running.append(slot.child)
        return running

    async def _get(self, name: str) -> OperationRecord | None:
        try:
            return await self.store.get(name)
        except NotFound:
            return None

    # -- promises --------------------------------------------------------------------------

    async def resolve_promise(
        self, promise: str, value: Any, error: tuple[int, str] | None
    ) -> methods_pb2.Promise:
        """Resolve (``value``) or reject (``error``) the promise ``promise``; a second
        answer changes nothing. Returns the promise as stored."""
        parent, position, secret = journal.parse_promise_id(promise)
        record = await self._get(parent)
        if record is None or record.family != FAMILY:
            raise journal.unknown_promise()
        fold = Fold(await self.store.journal(parent))
        slot = fold.slots.get(position)
        if not journal.secret_matches(slot, secret):
            raise journal.unknown_promise()
        assert slot is not None
        if slot.done:
            return _promise(promise, parent, slot)
        outcome: dict[str, Any] = (
            {"error": journal.error_json(*error)} if error is not None else {"value": value}
        )
        event = {"kind": journal.PROMISE_RESOLVED, "pos": position, **outcome}
        known = [fold.seq]
        ended: list[bool] = []

        async def apply(fresh: OperationRecord) -> Write | None:
            if fresh.done:
                ended.append(True)
                return None
            checkpoint = Checkpoint.of(fresh)
            base = int(checkpoint.state.get("events", 0))
            if base > known[0]:
                for stored_event in await self.store.journal(parent, after_seq=known[0]):
                    fold.apply(stored_event.seq, json.loads(stored_event.data))
                known[0] = base
            if slot.done:
                return None
            wait = checkpoint.wait
            if wait is not None and promise in wait.promises and promise not in wait.resolved:
                wait = dataclasses.replace(wait, resolved=(*wait.resolved, promise))
            state = {**checkpoint.state, "events": base + 1}
            updated = dataclasses.replace(checkpoint, wait=wait, state=state)
            written = dataclasses.replace(fresh, checkpoint=updated.encode())
            return written, [JournalEvent(base + 1, journal.encode(event))]

        stored = await compare_and_append(self.store, parent, apply, current=record)
        if slot.done:  # another answer came first
            return _promise(promise, parent, slot)
        if ended:
            raise _operation_done(parent)
        fold.apply(0, event)
        self.on_resolved(stored)
        return _promise(promise, parent, slot)


@dataclasses.dataclass(frozen=True, slots=True)
class _Waiting:
    children: set[str]
    promises: set[str]
    wake_at_us: int


@dataclasses.dataclass(frozen=True, slots=True)
class _Failure:
    code: Code
    message: str


_Outcome = _Waiting | _Failure | Any
_PromiseState = methods_pb2.Promise.State


def _resolved(fold: Fold, promise: str) -> bool:
    try:
        _, position, _ = journal.parse_promise_id(promise)
    except LroError:
        return False
    slot = fold.slots.get(position)
    return slot is not None and slot.done


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
