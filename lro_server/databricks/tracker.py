"""The tracker: starts Databricks work, follows it to its end, and writes what it sees.

One tracker per server process. It leases unfinished operations from the store (so each is
followed by exactly one replica), polls each entity with a per-operation interval that backs
off while nothing changes, and finishes operations with exactly one of response or error.
Every write is compare-and-set, so a concurrent CancelOperation or another replica can never
be overwritten. Transient Databricks errors only delay a poll; they never fail an operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any

from google.protobuf.message import Message

from lro_server.core import lifecycle, tracing
from lro_server.core.clock import Clock, SystemClock, to_micros
from lro_server.core.errors import (
    Aborted,
    Code,
    FailedPrecondition,
    Internal,
    LroError,
    NotFound,
    Unavailable,
)
from lro_server.core.names import operation_id
from lro_server.core.operations import CAS_ATTEMPTS
from lro_server.core.record import OperationRecord
from lro_server.core.store import OperationStore
from lro_server.core.supervisor import Supervised, Supervisor
from lro_server.databricks.client import Databricks
from lro_server.databricks.family import Family, Observation
from lro_server.databricks.tracker_batch import Batcher
from lro_server.databricks.tracker_state import (
    Schedule,
    TrackerOptions,
    differs,
    unpack_metadata,
)

_log = logging.getLogger(__name__)


class Tracker:
    """Runs and follows Databricks work behind operations (a core ``WorkRunner``)."""

    def __init__(
        self,
        store: OperationStore,
        dbx: Databricks,
        families: Mapping[str, Family],
        options: TrackerOptions,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.dbx = dbx
        self.families = dict(families)
        self.options = options
        self.clock = clock or SystemClock()
        self.schedule = Schedule(options)
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._loop: Supervised | None = None
        self._slots = asyncio.Semaphore(options.concurrency)
        self.polls = 0
        self.batcher = Batcher(self)

    # -- WorkRunner ---------------------------------------------------------------------

    def prepare(self, record: OperationRecord) -> OperationRecord:
        """Stamp a new record: deadline, initial metadata, and this replica's lease."""
        family = self._family(record.work)
        timeout_us = int(float(record.work.get("timeout_seconds", 1200)) * 1_000_000)
        deadline_us = record.create_time_us + timeout_us
        metadata = family.initial_metadata(record.work, record.create_time_us, deadline_us)
        operation = type(record.operation)()
        operation.CopyFrom(record.operation)
        operation.metadata.CopyFrom(lifecycle.pack(metadata))
        return dataclasses.replace(
            record,
            operation=operation,
            work={**record.work, "deadline_us": deadline_us},
            lease_holder=self.options.holder,
            lease_expire_us=record.create_time_us + int(self.options.lease_seconds * 1e6),
        )

    async def start(self, record: OperationRecord) -> OperationRecord:
        """Start the work now, inside the RPC; rejections propagate, outages are retried."""
        self.batcher.note([record])
        # Busy while the start is under way, so that no poll starts it a second time.
        self.schedule.add(record.name, delay=self.options.first_poll_seconds)
        self.schedule.take([record.name])
        try:
            return await self._start(record)
        except Unavailable as exc:
            _log.warning("%s: start deferred, Databricks unavailable: %s", record.name, exc)
            self.schedule.add(record.name, delay=self.options.poll_interval_seconds)
            return record
        finally:
            self.schedule.finished(record.name)
            self.schedule.add(record.name, delay=self.options.first_poll_seconds)
            self._wake.set()

    async def request_cancel(self, record: OperationRecord) -> None:
        """Poll ``record`` at once: the poll sends the cancel and follows it."""
        self.poke(record.name)

    def poke(self, name: str) -> None:
        """Refresh ``name`` now if this replica tracks it (a hint; Databricks is re-read)."""
        if self.schedule.poke(name):
            self._wake.set()

    # -- life of the loop --------------------------------------------------------------

    def launch(self, supervisor: Supervisor) -> None:
        """Start the background loop under ``supervisor``."""
        self._loop = supervisor.start("tracker", self._run)

    async def stop(self) -> None:
        """Stop polling and release this replica's leases so another can take over at once."""
        if self._loop is not None:
            await self._loop.stop()
        for task in list(self._inflight):
            task.cancel()
        await asyncio.gather(*self._inflight, return_exceptions=True)
        names = self.schedule.names()
        if names:
            with contextlib.suppress(LroError):
                await self.store.release(self.options.holder, names)

    async def _run(self) -> None:
        next_claim = 0.0
        while True:
            now = time.monotonic()
            if now >= next_claim:
                await self._claim()
                next_claim = now + self.options.lease_seconds / 3
            for group in self.batcher.groups(self.schedule.due(now)):
                await self._slots.acquire()
                task = asyncio.create_task(self._poll_guarded(group))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            wake_at = min(next_claim, self.schedule.next_due())
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, wake_at - time.monotonic())):
                    await self._wake.wait()

    async def _claim(self) -> None:
        try:
            records = await self.store.claim(
                self.options.holder, self.options.lease_seconds, self.options.claim_limit
            )
        except LroError as exc:
            _log.warning("claiming operations failed: %s", exc)
            return
        self.schedule.keep_only({r.name for r in records})
        self.batcher.prune()
        self.batcher.note(records)

    async def _poll_guarded(self, names: list[str]) -> None:
        try:
            if len(names) == 1:
                await self.poll(names[0])
            else:
                await self.batcher.poll_many(names)
        except Exception:
            _log.exception("%s: poll failed unexpectedly", ", ".join(names[:3]))
            for name in names:
                self.schedule.backoff(name, changed=False)
        finally:
            self._slots.release()
            for name in names:
                self.schedule.finished(name)
            self._wake.set()

    # -- one poll ---------------------------------------------------------------------

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
        self.batcher.note([record])
        try:
            with _about(record, "lro.poll"):
                await self._advance(record)
        except (Aborted, FailedPrecondition):
            self.schedule.add(name, delay=0.05)  # a concurrent write won: re-read soon
        except NotFound:
            self.schedule.drop(name)

    def needs_attention(self, record: OperationRecord) -> bool:
        """Whether a poll must do more than observe (start, time out, send a cancel)."""
        work = record.work
        now_us = to_micros(self.clock.now())
        return (
            "entity" not in work
            or now_us >= int(work.get("deadline_us", now_us + 1))
            or bool(work.get("cancel_requested") and not work.get("cancel_sent"))
        )

    async def settle(self, record: OperationRecord, observation: Observation) -> None:
        """Write what a (batched) observation showed; a concurrent write means re-read soon."""
        try:
            with _about(record, "lro.settle"):
                await self._record(record, observation)
        except (Aborted, FailedPrecondition):
            self.schedule.add(record.name, delay=0.05)
        except NotFound:
            self.schedule.drop(record.name)

    async def _advance(self, record: OperationRecord) -> None:
        family = self._family(record.work)
        now_us = to_micros(self.clock.now())
        try:
            if "entity" not in record.work:
                # An earlier start may have reached Databricks: the family looks first.
                record = await self._start(record, retry=True)
            if now_us >= int(record.work.get("deadline_us", now_us + 1)):
                await self._time_out(record, family)
                return
            if record.work.get("cancel_requested") and not record.work.get("cancel_sent"):
                await family.cancel(self.dbx, record.work)
                record = await self.store.update(
                    dataclasses.replace(record, work={**record.work, "cancel_sent": True})
                )
            observation = await family.observe(
                self.dbx, record.work, unpack_metadata(record.operation.metadata)
            )
        except Unavailable as exc:
            # Throttling or an outage, of Databricks or of the store: try again later.
            _log.info("%s: unavailable, will retry: %s", record.name, exc)
            self.schedule.backoff(record.name, changed=False)
            return
        except LroError as exc:
            if isinstance(exc, (Aborted, FailedPrecondition, NotFound)) and not _from_databricks(
                exc
            ):
                raise  # the store's answer (a lost race, a done or deleted record): see poll()
            await self._finish_failed(record, exc)
            return
        await self._record(record, observation)

    async def _start(self, record: OperationRecord, *, retry: bool = False) -> OperationRecord:
        family = self._family(record.work)
        # The operation id is the idempotency token: a retried start finds the same entity.
        entity = await family.start(self.dbx, record.work, operation_id(record.name), retry=retry)
        _log.info("%s: started %s", record.name, entity)
        for _ in range(CAS_ATTEMPTS):
            try:
                return await self.store.update(
                    dataclasses.replace(record, work={**record.work, "entity": entity})
                )
            except Aborted:
                # A lease renewal or a CancelOperation wrote meanwhile: keep theirs, add ours.
                record = await self.store.get(record.name)
                if record.done or "entity" in record.work:
                    return record
        raise Aborted(f"{record.name} changed too often to record its Databricks entity")

    async def _record(self, record: OperationRecord, observation: Observation) -> None:
        metadata = observation.metadata
        _touch(metadata, to_micros(self.clock.now()))
        verdict = observation.verdict
        if not verdict.done:
            before = unpack_metadata(record.operation.metadata)
            changed = observation.state != record.state or differs(before, metadata)
            if observation.entity:
                entity = {**record.work.get("entity", {}), **observation.entity}
                record = dataclasses.replace(record, work={**record.work, "entity": entity})
                changed = True
            if changed:
                await self.store.update(
                    lifecycle.with_metadata(record, metadata, state=observation.state)
                )
            self.schedule.backoff(record.name, changed=changed)
            return
        if verdict.succeeded and observation.response is not None:
            finished = lifecycle.succeed(
                record, observation.response, metadata=metadata, state=observation.state
            )
        else:
            code, message = verdict.code, verdict.message
            if record.work.get("cancel_requested") and code == Code.CANCELLED:
                message = f"operation cancelled: {message}" if message else "operation cancelled"
            finished = lifecycle.fail(
                record,
                code,
                message,
                details=observation.details,
                metadata=metadata,
                state=observation.state,
            )
        await self.store.update(finished)
        self.schedule.drop(record.name)
        _log.info("%s: done (%s)", record.name, verdict.code.name)

    async def _time_out(self, record: OperationRecord, family: Family) -> None:
        if "entity" in record.work:
            try:
                await family.cancel(self.dbx, record.work)
            except LroError as exc:
                _log.warning("%s: cancel at timeout failed: %s", record.name, exc)
        timeout = float(record.work.get("timeout_seconds", 0))
        await self.store.update(
            lifecycle.fail(
                record,
                Code.DEADLINE_EXCEEDED,
                f"operation did not finish within its timeout of {timeout:g}s; "
                "the work was cancelled",
                state="TIMED_OUT",
            )
        )
        self.schedule.drop(record.name)
        _log.info("%s: timed out", record.name)

    async def _finish_failed(self, record: OperationRecord, error: LroError) -> None:
        # Databricks refused a call for good (e.g. the run was deleted): that is the outcome.
        _log.warning("%s: failing, Databricks answered %s", record.name, error)
        await self.store.update(lifecycle.fail(record, error.code, error.message))
        self.schedule.drop(record.name)

    def _family(self, work: Mapping[str, Any]) -> Family:
        family = self.families.get(str(work.get("family")))
        if family is None:
            raise Internal(f"no tracker family for {work.get('family')!r}")
        return family


def _about(record: OperationRecord, span_name: str) -> contextlib.AbstractContextManager[None]:
    """Log lines and spans of a poll belong to the operation and to the trace that started it."""
    return tracing.operation_scope(record.name, record.work, span_name)


def _from_databricks(error: LroError) -> bool:
    return error.reason.startswith("DATABRICKS_")


def _touch(metadata: Message, now_us: int) -> None:
    if "update_time" in metadata.DESCRIPTOR.fields_by_name:
        getattr(metadata, "update_time").FromMicroseconds(now_us)  # noqa: B009  any family
