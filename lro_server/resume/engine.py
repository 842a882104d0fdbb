"""The Resumer: commits resumable methods' decisions and resumes them when their wait ends.

It is the ``WorkRunner`` of resumable operations (``prepare``/``start``/``request_cancel``)
and the one entry point of every resume, external (a workflow's call with
``x-alis-operation-id``) or embedded. Rules of a resume:

- a caller that is not a waiter (the workflow's identity, the server itself, or anyone
  when authentication is off) → PermissionDenied, before anything is read;
- no such operation → NotFound;
- a wait id (``x-lro-wait-id``) naming an earlier wait of the operation → no-op that
  returns the operation as it is (a repeated or concurrent resume);
- the operation is done → FailedPrecondition; it is not a resumable operation of the
  method called, or is not waiting → FailedPrecondition; nothing changes;
- the wait not ready and no timeout → no-op (the server never trusts a waiter's word
  that children are done: it re-reads them itself; a durable method's promises and timer
  are read from its checkpoint; a cancel requested makes the wait ready once its children
  are done);
- otherwise the method decides (:class:`~lro_server.resume.method.Advance`) and the
  decision is written with compare-and-set (:mod:`lro_server.resume.commit`). Losing that
  race to another resume of the same wait makes this one a no-op; losing it to a
  CancelOperation re-applies the same decision to the fresh record (children it started
  are then cancelled), so side effects happen once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from google.longrunning import operations_pb2

from lro_server.core import lifecycle, tracing
from lro_server.core.clock import Clock, SystemClock, to_micros
from lro_server.core.errors import (
    FailedPrecondition,
    Internal,
    LroError,
    NotFound,
    OperationDone,
    PermissionDenied,
)
from lro_server.core.metrics import Metrics
from lro_server.core.names import validate_operation_name
from lro_server.core.operations import Create
from lro_server.core.principal import INTERNAL, Principal
from lro_server.core.record import OperationRecord
from lro_server.core.store import OperationStore
from lro_server.resume import commit
from lro_server.resume.checkpoint import Checkpoint
from lro_server.resume.method import (
    Advance,
    Decision,
    ResumableMethod,
    Resumption,
    RunNow,
    WaitOutcome,
    read_all,
)
from lro_server.resume.waiter import Waiter, WaitTicket

_log = logging.getLogger(__name__)

#: Hand-offs of one wait after a waiter gave up, before the parent fails.
MAX_WAITER_RETRIES = 3

#: Lease holder of resumable operations. Their waits live in their checkpoints, not with a
#: replica, so they are leased to this pseudo-holder for good: the tracker's claim (which
#: takes unfinished operations whose lease expired) never picks them up.
RESUMABLE_HOLDER = "lro-resume"
_FOREVER_US = 2**62

#: Cancels a child operation (OperationsService.cancel as the server itself).
CancelChild = Callable[[str], Awaitable[None]]


class Resumer:
    """Runs resumable methods over an OperationStore.

    Args:
        store: The (observed) operation store.
        methods: The resumable methods served.
        clock: Time source of deadlines and of the pause between hand-off retries.
        metrics: Where resume latency and resume outcomes are counted.
    """

    def __init__(
        self,
        store: OperationStore,
        methods: Iterable[ResumableMethod],
        *,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics or Metrics()
        self.methods: dict[str, ResumableMethod] = {}
        for method in methods:
            self.add(method)
        self.clock = clock or SystemClock()
        self._waiter: Waiter | None = None
        self._cancel_child: CancelChild | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def add(self, method: ResumableMethod) -> None:
        """Serve ``method`` too."""
        self.methods[method.method] = method

    def _served(self, name: str) -> ResumableMethod | None:
        """The method created by, or resumed through, the RPC ``name``."""
        found = self.methods.get(name)
        if found is not None:
            return found
        return next((m for m in self.methods.values() if m.resume_method == name), None)

    def ticket(self, record: OperationRecord, checkpoint: Checkpoint) -> WaitTicket:
        """The wait ticket of ``record``, naming the RPC waiters resume it through."""
        served = self.methods.get(record.method)
        return WaitTicket.of(record, checkpoint, served.resume_method if served else "")

    def bind(self, waiter: Waiter, cancel_child: CancelChild) -> None:
        """Connect the waiter and the way to cancel children (built after this object)."""
        self._waiter = waiter
        self._cancel_child = cancel_child

    @property
    def waiter(self) -> Waiter:
        """The waiter waits are handed to."""
        if self._waiter is None:
            raise Internal("the resumer has no waiter")
        return self._waiter

    # -- WorkRunner ----------------------------------------------------------------------

    def prepare(self, record: OperationRecord) -> OperationRecord:
        """Stamp a new record: initial metadata and checkpoint (``seq`` 0)."""
        method = self._method(record.method)
        state, metadata = method.initial(record)
        operation = operations_pb2.Operation()
        operation.CopyFrom(record.operation)
        operation.metadata.CopyFrom(lifecycle.pack(metadata))
        return dataclasses.replace(
            record,
            operation=operation,
            state="PENDING",
            checkpoint=Checkpoint(method.method, state=state).encode(),
            lease_holder=RESUMABLE_HOLDER,
            lease_expire_us=_FOREVER_US,
        )

    async def start_and_store(
        self, record: OperationRecord, create: Create
    ) -> OperationRecord | None:
        """A resumable method's first move needs its record stored: never before."""
        return None

    async def start(self, record: OperationRecord) -> OperationRecord:
        """Make the method's first move inside the start RPC."""
        method = self._method(record.method)
        checkpoint = Checkpoint.of(record)
        decision = await method.begin(record, checkpoint.state)
        return await self._decided(record, checkpoint, decision)

    async def request_cancel(self, record: OperationRecord) -> None:
        """Cancel the children the operation waits for; the resume then ends it CANCELLED.

        A wait on promises or a timer is resumed at once (nothing else would wake it)."""
        checkpoint = Checkpoint.of(record)
        wait = checkpoint.wait
        if wait is None:
            return
        await self._cancel_all(record.name, wait.children)
        if wait.promises or wait.wake_at_us:
            self.spawn(self.resume_ticket(self.ticket(record, checkpoint), WaitOutcome.DONE))

    # -- resume ----------------------------------------------------------------------------

    async def resume(
        self,
        name: str,
        caller: Principal,
        *,
        method: str,
        wait_id: int | None = None,
        outcome: WaitOutcome = WaitOutcome.DONE,
    ) -> operations_pb2.Operation:
        """Resume the operation ``name`` of ``method``; see the module docstring."""
        if not caller.waiter:
            raise PermissionDenied(
                "only the waiter identity may resume an operation", reason="NOT_WAITER"
            )
        name = validate_operation_name(name, field="x-alis-operation-id")
        record = await self.store.get(name)
        served = self._served(method)
        if served is None or record.method != served.method or record.checkpoint is None:
            raise FailedPrecondition(
                f"{name} is not an operation of {method} and cannot be resumed by it",
                reason="NOT_RESUMABLE",
                metadata={"name": name, "method": method},
            )
        checkpoint = Checkpoint.of(record)
        current = checkpoint.wait.id if checkpoint.wait else None
        if wait_id is not None and wait_id != current:
            if wait_id > checkpoint.seq or wait_id < 1:
                raise FailedPrecondition(
                    f"{name} never had wait {wait_id}",
                    reason="UNKNOWN_WAIT",
                    metadata={"name": name, "wait_id": str(wait_id)},
                )
            _log.info("%s: wait %d was resumed already; no-op", name, wait_id)
            self.metrics.observe_resume(method, 0.0, outcome="duplicate")
            return record.operation
        if record.done:
            raise OperationDone(f"{name} is done and cannot be resumed", metadata={"name": name})
        if checkpoint.wait is None:
            raise FailedPrecondition(
                f"{name} is not waiting", reason="NOT_WAITING", metadata={"name": name}
            )
        with tracing.operation_scope(record.name, record.traceparent, "lro.resume"):
            return await self._resume_wait(record, checkpoint, outcome)

    async def _resume_wait(
        self, record: OperationRecord, checkpoint: Checkpoint, outcome: WaitOutcome
    ) -> operations_pb2.Operation:
        wait = checkpoint.wait
        assert wait is not None
        children = await read_all(self.store, wait.children)
        all_done = all(c is None or c.done for c in children.values())
        now = self._now_us()
        timed_out = outcome is WaitOutcome.TIMEOUT or now >= wait.deadline_us
        ready = wait.ready(now, all_done) or (record.cancel_requested and all_done)
        waiter_failed = False
        if not ready and not timed_out:
            if outcome is not WaitOutcome.ERROR or all_done:
                _log.info("%s: not ready yet; resume is a no-op", record.name)
                return record.operation
            if wait.retries < MAX_WAITER_RETRIES:
                return (await self._rewait(record, checkpoint)).operation
            waiter_failed = True
        resumption = Resumption(
            parent=record,
            state=checkpoint.state,
            children=children,
            timed_out=timed_out,
            waiter_failed=waiter_failed,
            checkpoint=checkpoint,
        )
        decision = await self._method(record.method).resume(resumption)
        stored = await self._decided(record, checkpoint, decision)
        # Done records never change again, so a child's update time is when it finished.
        finished = [c.update_time_us for c in children.values() if c is not None and c.done]
        if all_done and finished:
            waited = max(0.0, (self._now_us() - max(finished)) / 1e6)
            self.metrics.observe_resume(record.method, waited)
        return stored.operation

    # -- commits ---------------------------------------------------------------------------

    async def _decided(
        self, record: OperationRecord, checkpoint: Checkpoint, decision: Decision
    ) -> OperationRecord:
        if isinstance(decision, RunNow):
            self.spawn(self._run_now(record, checkpoint))
            return record
        if isinstance(decision, Advance):
            decision = await commit.commit(self.store, record, checkpoint, decision)
        if decision.wrote:
            # Written (after a lost race with a CancelOperation: the same decision, applied
            # to the fresh record).
            await self._after_commit(decision.record, decision.checkpoint, decision.cancel)
        else:
            _log.info("%s: a concurrent resume moved on first; no-op", record.name)
        return decision.record

    async def _run_now(self, record: OperationRecord, checkpoint: Checkpoint) -> None:
        """Resume ``record`` as its first move left it (:class:`RunNow`), not read again:
        the method's writes are conditional on this checkpoint's seq, so a resume or an
        ending that came first makes them re-read, decide again or stop."""
        with tracing.operation_scope(record.name, record.traceparent, "lro.resume"):
            resumption = Resumption(
                parent=record, state=checkpoint.state, children={}, checkpoint=checkpoint
            )
            decision = await self._method(record.method).resume(resumption)
            await self._decided(record, checkpoint, decision)

    async def _after_commit(
        self, stored: OperationRecord, checkpoint: Checkpoint, cancel: tuple[str, ...]
    ) -> None:
        if cancel:
            await self._cancel_all(stored.name, cancel)
        wait = checkpoint.wait
        if wait is None:
            if self._waiter is not None:
                self._waiter.forget(stored.name)
            _log.info("%s: %s", stored.name, "done" if stored.done else "committed")
            return
        if stored.cancel_requested:
            # CancelOperation arrived while these children were being started.
            await self._cancel_all(stored.name, wait.children)
        await self._hand_off(stored, checkpoint)

    async def _hand_off(self, record: OperationRecord, checkpoint: Checkpoint) -> None:
        ticket = self.ticket(record, checkpoint)
        try:
            handle = await self.waiter.hand_off(ticket)
        except LroError as exc:
            _log.warning("%s: handing wait %d off failed: %s", record.name, ticket.wait_id, exc)
            self.spawn(self._hand_off_failed(ticket, checkpoint))
            return
        _log.info(
            "%s: waiting on %s (wait %d)", record.name, ", ".join(ticket.children), ticket.wait_id
        )
        if handle:
            await commit.record_handle(self.store, record.name, ticket.wait_id, handle)

    async def _hand_off_failed(self, ticket: WaitTicket, checkpoint: Checkpoint) -> None:
        retries = checkpoint.wait.retries if checkpoint.wait else 0
        await self.clock.sleep(min(2.0**retries, 30.0))
        await self.resume(
            ticket.parent,
            INTERNAL,
            method=ticket.method,
            wait_id=ticket.wait_id,
            outcome=WaitOutcome.ERROR,
        )

    async def resume_ticket(self, ticket: WaitTicket, outcome: WaitOutcome) -> None:
        """Resume the wait of ``ticket`` as the server itself (timers, promises, sweeps):
        a wait that moved on, or an operation deleted or done, is nothing to resume."""
        try:
            await self.resume(
                ticket.parent,
                INTERNAL,
                method=ticket.method,
                wait_id=ticket.wait_id,
                outcome=outcome,
            )
        except (NotFound, FailedPrecondition):
            return

    async def rewait(self, name: str, wait_id: int) -> bool:
        """Hand wait ``wait_id`` of ``name`` off again (its waiter died); True when this
        call did it (one winner across replicas: the re-wait is a compare-and-set)."""
        record = await self.store.get(name)
        checkpoint = Checkpoint.of(record)
        if record.done or checkpoint.wait is None or checkpoint.wait.id != wait_id:
            return False
        if checkpoint.wait.retries >= MAX_WAITER_RETRIES:
            # Handed off too often already: the resume fails the parent UNAVAILABLE.
            await self.resume_ticket(self.ticket(record, checkpoint), WaitOutcome.ERROR)
            return False
        before = checkpoint.seq
        stored = await self._rewait(record, checkpoint)
        return Checkpoint.of(stored).seq == before + 1 and not stored.done

    async def _rewait(self, record: OperationRecord, checkpoint: Checkpoint) -> OperationRecord:
        rewaited = await commit.rewait(self.store, record, checkpoint)
        if not rewaited.wrote:
            return rewaited.record  # resumed or finished meanwhile: nothing left to wait for
        _log.warning(
            "%s: the waiter gave up; waiting again (wait %d)", record.name, rewaited.checkpoint.seq
        )
        await self._hand_off(rewaited.record, rewaited.checkpoint)
        return rewaited.record

    # -- helpers ---------------------------------------------------------------------------

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run ``coroutine`` in the background, logging its failure (waiters use this)."""
        # The coroutine itself is the task (no wrapper), so one cancelled before it ever
        # ran (a stop right after a start) is closed, not left never awaited.
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, LroError):
            _log.warning("background resume step failed: %s", exc)
        elif exc is not None:
            _log.error("background resume step failed unexpectedly", exc_info=exc)

    @property
    def busy(self) -> int:
        """Background resumes running now."""
        return len(self._tasks)

    async def stop(self) -> None:
        """Cancel background work."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _cancel_all(self, parent: str, children: Iterable[str]) -> None:
        if self._cancel_child is None:
            raise Internal("the resumer cannot cancel children")
        for child in children:
            try:
                await self._cancel_child(child)
                _log.info("%s: cancelled child %s", parent, child)
            except LroError as exc:
                _log.warning("%s: cancelling child %s failed: %s", parent, child, exc)

    def _method(self, name: str) -> ResumableMethod:
        method = self.methods.get(name)
        if method is None:
            raise Internal(f"{name} is not a resumable method")
        return method

    def _now_us(self) -> int:
        return to_micros(self.clock.now())
