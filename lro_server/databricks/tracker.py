"""The tracker: starts Databricks work, follows it to its end, and writes what it sees.

One tracker per server process. It leases unfinished operations from the store (so each is
followed by exactly one replica), polls each entity with a per-operation interval that backs
off while nothing changes, and finishes operations with exactly one of response or error.
What one poll does is the :class:`~lro_server.databricks.tracker_poll.Poller`'s; when to
poll, and which operations to poll together, is decided here and by the
:class:`~lro_server.databricks.tracker_batch.Batcher`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Mapping

from lro_server.core import lifecycle
from lro_server.core.clock import Clock, SystemClock
from lro_server.core.errors import LroError, NotFound, Unavailable
from lro_server.core.record import OperationRecord
from lro_server.core.store import OperationStore
from lro_server.core.supervisor import Supervised, Supervisor
from lro_server.databricks.client import Databricks
from lro_server.databricks.family import Family
from lro_server.databricks.tracker_batch import Batcher
from lro_server.databricks.tracker_poll import Poller
from lro_server.databricks.tracker_state import Schedule, TrackerOptions
from lro_server.databricks.work import Work

_log = logging.getLogger(__name__)


class Tracker:
    """Runs and follows Databricks work behind operations (a core ``WorkRunner``).

    Args:
        store: The operation store.
        dbx: The Databricks client the families call.
        families: Family by name (the records' ``family``).
        options: Intervals, lease and limits.
        clock: Time of deadlines, schedules and waits.
    """

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
        self.schedule = Schedule(options, self.clock.monotonic)
        self.poller = Poller(store, dbx, self.families, self.schedule, self.clock)
        self.batcher = Batcher(self.families, self.schedule)
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._loop: Supervised | None = None
        self._slots = asyncio.Semaphore(options.concurrency)
        #: The newest push hint seen per tracked operation (see core.hints).
        self._hints: dict[str, int] = {}

    @property
    def polls(self) -> int:
        """Polls so far (for metrics)."""
        return self.poller.polls

    # -- WorkRunner ---------------------------------------------------------------------

    def prepare(self, record: OperationRecord) -> OperationRecord:
        """Stamp a new record: initial metadata and this replica's lease."""
        work = Work.of(record)
        metadata = self.poller.family(record).initial_metadata(work)
        record = lifecycle.with_metadata(record, metadata)
        return dataclasses.replace(
            record,
            keys=work.search_keys(),
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
            return await self.poller.start(record)
        except Unavailable as exc:
            _log.warning("%s: start deferred, Databricks unavailable: %s", record.name, exc)
            self.schedule.add(record.name, delay=self.options.poll_interval_seconds)
            try:
                return await self.poller.defer(record, exc)
            except LroError as error:  # the start stays deferred; the poll says so later
                _log.warning("%s: recording the deferral failed: %s", record.name, error)
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

    # -- the loop -------------------------------------------------------------------------

    def launch(self, supervisor: Supervisor) -> None:
        """Start :meth:`run` under ``supervisor``."""
        self._loop = supervisor.start("tracker", self.run)

    async def run(self) -> None:
        """Claim, poll what is due, sleep until the next due time; forever (supervised)."""
        next_claim = 0.0
        while True:
            now = self.clock.monotonic()
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
                async with self.clock.timeout(wake_at - self.clock.monotonic()):
                    await self._wake.wait()

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
        self._take_hints(records)

    def _take_hints(self, records: list[OperationRecord]) -> None:
        """Poll at once the claimed operations another replica left a newer hint on."""
        seen = self._hints
        for record in records:
            # Poked when its hint is newer than at the last claim (or than none: an
            # operation started here is in the schedule before its first claim).
            if record.hint_us > seen.get(record.name, 0):
                self.poke(record.name)
            seen[record.name] = record.hint_us
        claimed = {r.name for r in records}
        for name in [n for n in seen if n not in claimed]:
            del seen[name]

    async def _poll_guarded(self, names: list[str]) -> None:
        try:
            if len(names) == 1:
                await self.poller.poll(names[0])
            else:
                await self._poll_many(names)
        except Exception:
            _log.exception("%s: poll failed unexpectedly", ", ".join(names[:3]))
            for name in names:
                self.schedule.backoff(name, changed=False)
        finally:
            self._slots.release()
            for name in names:
                self.schedule.finished(name)
            self._wake.set()

    async def _poll_many(self, names: list[str]) -> None:
        """Poll one family's operations together (the first ones are due, the rest along)."""
        records: list[OperationRecord] = []
        for name in names:
            try:
                record = await self.store.get(name)
            except NotFound:
                self.schedule.drop(name)
                continue
            if record.done:
                self.schedule.drop(name)
            else:
                records.append(record)
        self.batcher.note(records)
        plan = await self.batcher.plan(self.dbx, names, records, self.poller.needs_attention)
        for record, observation in plan.settle:
            await self.poller.settle(record, observation)
        for name in plan.later:
            self.schedule.backoff(name, changed=False)
        await self._each(plan.individual)

    async def _each(self, names: list[str]) -> None:
        limit = max(1, self.options.concurrency)
        for start in range(0, len(names), limit):
            chunk = names[start : start + limit]
            results = await asyncio.gather(
                *(self.poller.poll(n) for n in chunk), return_exceptions=True
            )
            for name, result in zip(chunk, results, strict=True):
                if isinstance(result, Exception):
                    _log.error("%s: poll failed unexpectedly: %r", name, result)
                    self.schedule.backoff(name, changed=False)
