"""The durable engine: user methods as resumable operations, run by the Resumer.

A durable operation is a resumable operation whose checkpoint says where it waits and
whose journal is rows beside it. The :class:`DurableEngine` is the ResumableMethod of
``lro.durable.v1.Methods/Start``: ``begin`` has the Resumer run the method at once in
the background (so Start answers without running user code, and nothing is written
before the method's first commit), and every ``resume`` replays the method
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
from lro_server.core.cas import compare_and_set
from lro_server.core.clock import Clock, SystemClock, now_us
from lro_server.core.errors import (
    Code,
    LroError,
    Unavailable,
)
from lro_server.core.record import MAX_OPERATION_BYTES, OperationRecord
from lro_server.core.store import OperationStore
from lro_server.durable.context import Context
from lro_server.durable.errors import OperationFailed
from lro_server.durable.method import DurableMethod
from lro_server.resume import durable_journal as journal
from lro_server.resume import durable_promises as promises
from lro_server.resume import durable_view as view
from lro_server.resume.checkpoint import Checkpoint
from lro_server.resume.durable_activation import (
    Activation,
    Drift,
    Intent,
    Stop,
    Suspend,
)
from lro_server.resume.durable_commit import Failure, Outcome, Run, Superseded, Waiting, Writer
from lro_server.resume.durable_journal import Fold
from lro_server.resume.durable_payload import Payload
from lro_server.resume.durable_steps import HEARTBEAT_SECONDS
from lro_server.resume.method import Committed, Decision, Resumption, RunNow, read_all

_log = logging.getLogger(__name__)

SERVICE = "lro.durable.v1.Methods"
#: The record's ``method`` of durable operations.
START_METHOD = f"{SERVICE}/Start"
#: What waiters call to resume one.
RESUME_METHOD = f"{SERVICE}/Resume"
#: Largest result a method may return (its Struct): the operation holding it has room for
#: the metadata beside it.
MAX_RESULT_BYTES = MAX_OPERATION_BYTES - 1024 * 1024


class StartChild(Protocol):
    """Starts a child operation through the server's own methods (built in api/)."""

    async def __call__(
        self, method: str, request: dict[str, Any], *, owner: str, request_id: str, name: str
    ) -> operations_pb2.Operation:
        """Start ``method`` with ``request`` as ``owner``; the child is named ``name``."""
        ...


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
        #: Writes the operations (record and journal in one compare-and-set).
        self.writer = Writer(store, self.clock)
        #: Called with a record whose wait a resolved promise may have made ready.
        self.on_resolved: Callable[[OperationRecord], None] = lambda record: None
        self._runs: dict[int, Run] = {}

    # -- ResumableMethod -------------------------------------------------------------------

    def initial(self, record: OperationRecord) -> tuple[Mapping[str, Any], Any]:
        """No events yet; metadata PENDING."""
        payload = Payload.of(record)
        return {"events": 0}, self.writer.metadata(record, payload, Fold(), "PENDING", ("", ""))

    async def begin(self, parent: OperationRecord, state: Mapping[str, Any]) -> Decision:
        """First move: run the method at once in the background (:class:`RunNow`), so
        Start answers without running user code; the first activation's first commit is
        conditional on the created record's ``seq`` 0, as any other. For an operation that
        was running when its replica died (recovery, the stalled sweep), replay it here."""
        checkpoint = Checkpoint.of(parent)
        if parent.name in self.active:
            return Committed(parent, checkpoint, wrote=False)
        if checkpoint.seq > 0 and checkpoint.wait is None:
            return await self.resume(Resumption(parent=parent, state=state, children={}))
        return RunNow()

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
        checkpoint = resumption.checkpoint or Checkpoint.of(record)
        payload = Payload.of(record)
        events = int(checkpoint.state.get("events", 0))
        run = Run(record, checkpoint.seq, events, payload)
        if record.checkpoint is not None:
            run.known = (record.checkpoint, checkpoint)
        # A method that never wrote (seq 0) has no journal yet; any other may have appended
        # events its checkpoint does not count (quick steps only append).
        fold = Fold(await self.store.journal(record.name) if checkpoint.seq else ())
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
            activation.watch.close()
            self._runs.pop(id(activation), None)

    async def _replay(self, method: DurableMethod, run: Run, activation: Activation) -> Committed:
        fold = activation.fold
        try:
            result = await method.function(Context(activation), dict(run.payload.input))
        except Suspend as suspended:
            waiting = Waiting(suspended.children, suspended.promises, suspended.wake_at_us)
            return await self._finish(run, fold, waiting, activation.progress_state)
        except Drift as drift:
            return await self._fail(run, fold, Code.FAILED_PRECONDITION, drift.message, activation)
        except Stop as stop:
            return await self._end(run, fold, stop.code, stop.message, activation.progress_state)
        except Superseded as superseded:
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
        if response.ByteSize() > MAX_RESULT_BYTES:
            message = (
                f"ValueError: the method's result is {response.ByteSize():,} bytes, over the "
                f"limit of {MAX_RESULT_BYTES:,}: keep large data elsewhere and return its name"
            )
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
        self, run: Run, fold: Fold, code: Code, message: str, activation: Activation
    ) -> Committed:
        activation.to_start.clear()  # nothing new starts for a failed method
        return await self._finish(run, fold, Failure(code, message), activation.progress_state)

    async def _end(
        self, run: Run, fold: Fold, code: Code, message: str, progress: tuple[str, str]
    ) -> Committed:
        """Cancel running children, then fail with ``code`` (cancel, timeout)."""
        running = await self._running_children(fold)
        committed = await self._finish(run, fold, Failure(code, message), progress)
        return (
            dataclasses.replace(committed, cancel=tuple(running)) if committed.wrote else committed
        )

    # -- Host ------------------------------------------------------------------------------

    async def commit_running(self, activation: Activation) -> None:
        """Commit the activation's pending events; it now owns the operation."""
        run = self._runs[id(activation)]
        stored, _ = await self.writer.write(run, activation.fold, None, activation.progress_state)
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
        run: Run,
        fold: Fold,
        outcome: Outcome,
        progress: tuple[str, str],
    ) -> Committed:
        try:
            stored, checkpoint = await self.writer.write(run, fold, outcome, progress)
        except Superseded as superseded:
            return Committed(superseded.record, Checkpoint.of(superseded.record), wrote=False)
        if isinstance(outcome, Waiting) and run.activation is not None:
            await run.activation.start_children(raise_refusals=True)
        return Committed(stored, checkpoint)

    # -- children --------------------------------------------------------------------------

    async def _children_outcomes(
        self, fold: Fold, known: Mapping[str, OperationRecord | None]
    ) -> tuple[list[dict[str, Any]], set[int]]:
        """CHILD_DONE events of children that ended since, and positions whose child does
        not exist (never started: the start is repeated when the replay reaches it)."""
        events: list[dict[str, Any]] = []
        missing: set[int] = set()
        open_calls = _open_calls(fold)
        unknown = [slot.child for _, slot in open_calls if slot.child not in known]
        children = {**known, **await read_all(self.store, unknown)}
        for position, slot in open_calls:
            child = children[slot.child]
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
        children = await read_all(self.store, [slot.child for _, slot in _open_calls(fold)])
        return [name for name, child in children.items() if child is not None and not child.done]

    # -- promises --------------------------------------------------------------------------

    async def resolve_promise(
        self, promise: str, value: Any, error: tuple[int, str] | None
    ) -> methods_pb2.Promise:
        """Resolve (``value``) or reject (``error``) the promise ``promise``; a second
        answer changes nothing. Returns the promise as stored."""
        answer, stored = await promises.resolve(self.store, promise, value, error)
        if stored is not None:
            self.on_resolved(stored)
        return answer


def _open_calls(fold: Fold) -> list[tuple[int, journal.Slot]]:
    """The positions (in order) whose child has not ended, as far as the journal knows."""
    return [
        (position, slot)
        for position, slot in sorted(fold.slots.items())
        if slot.kind == journal.CALL and not slot.done
    ]
