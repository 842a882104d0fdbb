"""No stranded parents: a periodic look at every waiting resumable operation.

In-memory timers and waiter executions can be lost: a replica dies with a durable
method's timer, or a Cloud Workflows execution fails, is cancelled or deleted (quota, an
operator) and nothing would resume its parent until the parent's own timeout. Every
replica runs this sweep (supervised, every ``stall_seconds``); for each waiting operation
it resumes, through the same :meth:`Resumer.resume` as any waiter:

- a timer overdue, or every awaited promise resolved, or the deadline passed;
- in Cloud Workflows mode, a wait whose children are all done since longer than the
  waiter's longest poll delay plus a margin (the execution should have resumed it);
- in Cloud Workflows mode, a wait whose execution is dead (FAILED, CANCELLED or deleted)
  while children still run: the wait is handed off again. That re-wait is a
  compare-and-set bumping the checkpoint's seq, so one replica wins and launches one
  execution, however many sweep at once.

Resumes are idempotent (wait id and compare-and-set), so replicas sweeping together still
resume each wait once.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable

from lro_server.core.clock import Clock, now_us
from lro_server.core.errors import FailedPrecondition, LroError, NotFound
from lro_server.core.record import OperationRecord
from lro_server.core.store import OperationStore
from lro_server.resume.checkpoint import Checkpoint
from lro_server.resume.engine import Resumer
from lro_server.resume.method import ResumableMethod, WaitOutcome
from lro_server.resume.recovery import unfinished

_log = logging.getLogger(__name__)

#: States of a waiter's execution that will never resume its parent.
DEAD = frozenset({"FAILED", "CANCELLED", "MISSING"})

#: The state of a waiter's execution by handle ("" when unknown); None: no executions.
ExecutionState = Callable[[str], Awaitable[str]]


@dataclasses.dataclass
class SweepCounts:
    """What one sweep did."""

    looked_at: int = 0
    resumed: int = 0
    handed_off_again: int = 0


async def sweep_waits(
    store: OperationStore,
    resumer: Resumer,
    methods: Iterable[ResumableMethod],
    clock: Clock,
    *,
    overdue_seconds: float,
    execution_state: ExecutionState | None = None,
) -> SweepCounts:
    """One sweep over the waiting operations of ``methods`` (see the module docstring).

    Args:
        store: The store.
        resumer: Resumes and re-waits.
        methods: The resumable methods served.
        clock: Time of the judgements.
        overdue_seconds: How long after due a wait counts as stranded.
        execution_state: The waiter's execution states (Cloud Workflows mode), or None.
    """
    counts = SweepCounts()
    overdue_us = round(overdue_seconds * 1_000_000)
    async for record in unfinished(store, methods):
        if record.checkpoint is None:
            continue
        try:
            checkpoint = Checkpoint.of(record)
        except FailedPrecondition:
            continue
        wait = checkpoint.wait
        if wait is None:
            continue
        counts.looked_at += 1
        now = now_us(clock)
        due = (
            now >= wait.deadline_us
            or (wait.wake_at_us and now >= wait.wake_at_us + overdue_us)
            or (wait.promises and set(wait.promises) <= set(wait.resolved) and not wait.children)
        )
        if not due and wait.children and execution_state is not None:
            stranded = _Stranded(store, resumer, execution_state, overdue_us, counts)
            due = await stranded.children_ended_long_ago(record, checkpoint, now)
        if due:
            counts.resumed += 1
            _log.info("%s: wait %d is overdue; resuming it", record.name, wait.id)
            await resumer.resume_ticket(resumer.ticket(record, checkpoint), WaitOutcome.DONE)
    return counts


@dataclasses.dataclass
class _Stranded:
    store: OperationStore
    resumer: Resumer
    execution_state: ExecutionState
    overdue_us: int
    counts: SweepCounts

    async def children_ended_long_ago(
        self, record: OperationRecord, checkpoint: Checkpoint, now: int
    ) -> bool:
        """Whether the wait's children ended long ago (resume it); a dead execution with
        children still running is handed off again here."""
        wait = checkpoint.wait
        assert wait is not None
        ended: list[int] = []
        for name in wait.children:
            try:
                child = await self.store.get(name)
            except NotFound:
                ended.append(0)
                continue
            if not child.done:
                break
            ended.append(child.update_time_us)  # a done record never changes again
        else:
            return max(ended, default=0) + self.overdue_us <= now
        if wait.handle and await self.execution_state(wait.handle) in DEAD:
            await self._hand_off_again(record, wait.id, wait.handle)
        return False

    async def _hand_off_again(self, record: OperationRecord, wait_id: int, handle: str) -> None:
        try:
            if await self.resumer.rewait(record.name, wait_id):
                self.counts.handed_off_again += 1
                _log.warning(
                    "%s: its waiter %s is dead; the wait was handed off again", record.name, handle
                )
        except LroError as exc:
            _log.warning("%s: handing its wait off again failed: %s", record.name, exc)
