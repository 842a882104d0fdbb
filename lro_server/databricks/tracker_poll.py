"""One poll of one operation: start it, time it out, send its cancel, observe it, write it.

The :class:`Poller` holds the decisions of the tracker about a single operation; the
:class:`~lro_server.databricks.tracker.Tracker` decides when to call it. Every write is
compare-and-set through :func:`~lro_server.core.cas.compare_and_set`, so a concurrent
CancelOperation, a lease renewal or another replica is never overwritten: what a poll
learned is applied again to what is stored now (the changes are
:mod:`~lro_server.databricks.tracker_changes`'). Transient errors (Databricks throttling or
an outage, an unreachable store) only delay the next poll; a Databricks refusal is the
operation's outcome.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator, Mapping, Sequence

from lro_server.core import tracing
from lro_server.core.cas import Change, compare_and_set, compare_and_set_many
from lro_server.core.clock import Clock, to_micros
from lro_server.core.errors import (
    Aborted,
    FailedPrecondition,
    Internal,
    LroError,
    NotFound,
    Origin,
    Unavailable,
)
from lro_server.core.names import operation_id
from lro_server.core.record import OperationRecord
from lro_server.core.store import OperationStore
from lro_server.databricks import tracker_changes as changes
from lro_server.databricks.client import Databricks
from lro_server.databricks.family import Family, Observation
from lro_server.databricks.limiter import urgent
from lro_server.databricks.tracker_changes import Decision
from lro_server.databricks.tracker_state import Schedule, unpack_metadata
from lro_server.databricks.work import Entity, Work

_log = logging.getLogger(__name__)

#: Delay of the re-read after a write lost its race (the other writer's record is newer).
REREAD_SECONDS = 0.05


class Poller:
    """Advances operations of the Databricks families one poll at a time.

    Args:
        store: The operation store.
        dbx: The Databricks client the families call.
        families: Family by name (the records' ``family``).
        schedule: The tracker's schedule, told when to poll each operation next.
        clock: Wall time of deadlines and metadata.
    """

    def __init__(
        self,
        store: OperationStore,
        dbx: Databricks,
        families: Mapping[str, Family],
        schedule: Schedule,
        clock: Clock,
    ) -> None:
        self.store = store
        self.dbx = dbx
        self.families = families
        self.schedule = schedule
        self.clock = clock
        #: Polls so far (for metrics).
        self.polls = 0

    def family(self, record: OperationRecord) -> Family:
        """The family of ``record`` (Internal for a record no family handles)."""
        family = self.families.get(record.family)
        if family is None:
            raise Internal(f"no tracker family for {record.family!r}")
        return family

    async def poll(self, name: str) -> None:
        """Advance one operation: start, time out, cancel, observe, finish."""
        self.polls += 1
        try:
            record = await self.store.get(name)
        except NotFound:
            self.schedule.drop(name)  # deleted: DeleteOperation does not cancel the work
            return
        except Unavailable as exc:
            _log.warning("%s: store unavailable, will retry: %s", name, exc)
            self.schedule.backoff(name, changed=False)
            return
        if record.done:
            self.schedule.drop(name)
            return
        with self._lost_races(name), _about(record, "lro.poll"):
            await self._advance(record)

    def needs_attention(self, record: OperationRecord) -> bool:
        """Whether a poll must do more than observe (start, time out, send a cancel)."""
        work = Work.of(record)
        return (
            not work.started
            or self._past_deadline(record)
            or (record.cancel_requested and not work.cancel_sent)
        )

    async def settle_many(self, observed: Sequence[tuple[OperationRecord, Observation]]) -> None:
        """Write what a walk of the lists showed, the writes of all ``observed`` operations
        in one store transaction (compare-and-set per operation still holds)."""
        decisions = [
            changes.decide(record, observation, to_micros(self.clock.now()))
            for record, observation in observed
        ]
        writes = [
            (record, decision.change)
            for (record, _), decision in zip(observed, decisions, strict=True)
            if decision.change is not None
        ]
        try:
            written = iter(await compare_and_set_many(self.store, writes))
        except Unavailable as exc:
            _log.warning("writing %d observations failed, will retry: %s", len(writes), exc)
            for record, _ in observed:
                self.schedule.backoff(record.name, changed=False)
            return
        for (record, _), decision in zip(observed, decisions, strict=True):
            outcome = next(written) if decision.change is not None else None
            with _about(record, "lro.settle"):
                if isinstance(outcome, LroError):
                    self._lost(record.name, outcome)
                else:
                    self._after(record.name, decision)

    async def start_unstored(
        self, record: OperationRecord, lease_seconds: float
    ) -> OperationRecord:
        """Start the work of ``record``, not stored yet; return it with the entity's ids
        in its payload and search keys, and its lease running ``lease_seconds`` from now
        (the start may have been slow), in one copy of the record."""
        work = Work.of(record)
        entity = await self._start_entity(record, work, retry=False)
        lease_expire_us = to_micros(self.clock.now()) + int(lease_seconds * 1e6)
        started = dataclasses.replace(work, entity=entity)
        return started.stored_in(record, lease_expire_us=lease_expire_us)

    async def abandon(self, record: OperationRecord) -> None:
        """Stop the work of a started ``record`` that could not be stored (best effort)."""
        _log.warning("%s: not stored; cancelling the work just started", record.name)
        try:
            with urgent():
                await self.family(record).cancel(self.dbx, Work.of(record))
        except LroError as exc:
            _log.error("%s: cancelling the work that was not stored failed: %s", record.name, exc)

    async def start(self, record: OperationRecord, *, retry: bool = False) -> OperationRecord:
        """Start the work of ``record`` and store the entity Databricks answered with."""
        entity = await self._start_entity(record, Work.of(record), retry=retry)
        return await self._write(record, changes.started(entity))

    async def _start_entity(self, record: OperationRecord, work: Work, *, retry: bool) -> Entity:
        family = self.family(record)
        # The operation id is the idempotency token: a retried start finds the same entity.
        # Starts go before polls in the workspace's rate limiter.
        with urgent():
            entity = await family.start(self.dbx, work, operation_id(record.name), retry=retry)
        _log.info("%s: started %s", record.name, entity)
        return entity

    async def defer(self, record: OperationRecord, error: LroError) -> OperationRecord:
        """Say in the operation that its start waits for Databricks (state and message);
        the start is retried by later polls with the same idempotency token."""
        return await self._write(record, self.waiting(error))

    def waiting(self, error: LroError) -> Change:
        """The change marking a start deferred by ``error`` (see :meth:`defer`)."""
        return changes.waiting(error, self.clock)

    # -- inside one poll ----------------------------------------------------------------

    async def _advance(self, record: OperationRecord) -> None:
        family = self.family(record)
        try:
            if not Work.of(record).started:
                # An earlier start may have reached Databricks: the family looks first.
                try:
                    record = await self.start(record, retry=True)
                except Unavailable as exc:
                    await self.defer(record, exc)
                    raise
                if record.done:
                    return
            if self._past_deadline(record):
                await self._time_out(record, family)
                return
            work = Work.of(record)
            if record.cancel_requested and not work.cancel_sent:
                with urgent():
                    await family.cancel(self.dbx, work)
                record = await self._write(record, changes.cancel_sent)
                if record.done:
                    return
                work = Work.of(record)
            observation = await family.observe(
                self.dbx, work, unpack_metadata(record.operation.metadata)
            )
        except Unavailable as exc:
            # Throttling or an outage, of Databricks or of the store: try again later.
            _log.info("%s: unavailable, will retry: %s", record.name, exc)
            self.schedule.backoff(record.name, changed=False)
            return
        except LroError as exc:
            if exc.origin is Origin.STORE:
                raise  # the store's answer (a lost race, a done or deleted record): see poll()
            if exc.origin is not Origin.DATABRICKS:
                # The server's own trouble (Databricks not configured, its credentials
                # refused, a bug): not the work's outcome. Try again later; the operation's
                # deadline still ends it.
                _log.warning("%s: cannot follow the work now: %s", record.name, exc)
                self.schedule.backoff(record.name, changed=False)
                return
            await self._finish_failed(record, exc)
            return
        await self._record(record, observation)

    async def _record(self, record: OperationRecord, observation: Observation) -> None:
        decision = changes.decide(record, observation, to_micros(self.clock.now()))
        if decision.change is not None:
            await self._write(record, decision.change)
        self._after(record.name, decision)

    def _after(self, name: str, decision: Decision) -> None:
        """Schedule ``name`` once its decision is written."""
        if decision.verdict.done:
            self.schedule.drop(name)
            _log.info("%s: done (%s)", name, decision.verdict.code.name)
        else:
            self.schedule.backoff(name, changed=decision.changed)

    async def _time_out(self, record: OperationRecord, family: Family) -> None:
        work = Work.of(record)
        if work.started:
            try:
                with urgent():
                    await family.cancel(self.dbx, work)
            except LroError as exc:
                _log.warning("%s: cancel at timeout failed: %s", record.name, exc)
        await self._write(record, changes.timed_out(record.timeout_seconds))
        self.schedule.drop(record.name)
        _log.info("%s: timed out", record.name)

    async def _finish_failed(self, record: OperationRecord, error: LroError) -> None:
        # Databricks refused a call for good (e.g. the run was deleted): that is the outcome.
        _log.warning("%s: failing, Databricks answered %s", record.name, error)
        await self._write(record, changes.failed(error))
        self.schedule.drop(record.name)

    async def _write(self, record: OperationRecord, change: Change) -> OperationRecord:
        return await compare_and_set(self.store, record.name, change, current=record)

    def _past_deadline(self, record: OperationRecord) -> bool:
        return 0 < record.deadline_us <= to_micros(self.clock.now())

    @contextlib.contextmanager
    def _lost_races(self, name: str) -> Iterator[None]:
        """Store answers that end a poll (see :meth:`_lost`)."""
        try:
            yield
        except (Aborted, FailedPrecondition, NotFound) as exc:
            self._lost(name, exc)

    def _lost(self, name: str, error: LroError) -> None:
        """A write of ``name`` failed: re-read soon after a race lost too often (or a store
        outage), stop tracking a deleted operation."""
        if isinstance(error, NotFound):
            self.schedule.drop(name)
        elif isinstance(error, Aborted | FailedPrecondition):
            self.schedule.add(name, delay=REREAD_SECONDS)
        else:
            self.schedule.backoff(name, changed=False)


def _about(record: OperationRecord, span_name: str) -> contextlib.AbstractContextManager[None]:
    """Log lines and spans of a poll belong to the operation and to the trace that started it."""
    return tracing.operation_scope(record.name, record.traceparent, span_name)
