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
import logging
import math
from collections.abc import Mapping

from lro_server.core import lifecycle
from lro_server.core.clock import Clock, SystemClock
from lro_server.core.errors import LroError, Unavailable
from lro_server.core.operations import Create
from lro_server.core.record import OperationRecord
from lro_server.core.store import OperationStore
from lro_server.core.supervisor import Supervised, Supervisor
from lro_server.databricks.client import Databricks
from lro_server.databricks.family import Family
from lro_server.databricks.tracker_batch import Batcher, PollGroup
from lro_server.databricks.tracker_poll import Poller
from lro_server.databricks.tracker_state import Schedule, TrackerOptions
from lro_server.databricks.work import Work

_log = logging.getLogger(__name__)

#: Most records a walk reads in one store call.
READ_BATCH = 500


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
        self.batcher = Batcher(self.families, self.schedule, spacing=options.poll_interval_seconds)
        self._wake = asyncio.Event()
        #: When the sleeping loop wakes by itself (-inf while it runs: it then reads the
        #: schedule before it sleeps again, so nothing added meanwhile needs a wake-up).
        self._sleeps_until = -math.inf
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
        return lifecycle.with_metadata(
            record,
            metadata,
            keys=work.search_keys(),
            lease_holder=self.options.holder,
            lease_expire_us=record.create_time_us + int(self.options.lease_seconds * 1e6),
        )

    async def start_and_store(self, record: OperationRecord, create: Create) -> OperationRecord:
        """Start the work inside the RPC, then store the record once, with the entity's ids.

        A refusal propagates (nothing started, nothing stored). An outage stores the
        record unstarted: the tracker retries the start with the same idempotency token.
        When the record cannot be stored, the work just started is cancelled (best effort)
        before the error propagates, so the caller's retry does not leave two running.
        """
        try:
            launched = await self.poller.start_unstored(record, self.options.lease_seconds)
        except Unavailable as exc:
            _log.warning("%s: start deferred, Databricks unavailable: %s", record.name, exc)
            # Stored once, already saying that its start waits for Databricks.
            stored = await create(self.poller.waiting(exc)(record) or record)
            self._track(stored, delay=self.options.poll_interval_seconds)
            return stored
        try:
            stored = await create(launched)
        except LroError:
            await self.poller.abandon(launched)
            raise
        self._track(stored, delay=self.options.first_poll_seconds)
        return stored

    def _track(self, record: OperationRecord, *, delay: float) -> None:
        """Follow ``record`` from now on (its family noted with it: a claim meanwhile
        forgets the families of operations the schedule does not know)."""
        self.batcher.note([record])
        self.schedule.add(record.name, delay=delay)
        self._due_in(delay)

    def _due_in(self, delay: float) -> None:
        """Wake the loop if it sleeps past ``delay`` from now (a start costs no wake-up
        of a loop that will look at its schedule before then anyway)."""
        if self.clock.monotonic() + delay < self._sleeps_until:
            self._wake.set()

    async def start(self, record: OperationRecord) -> OperationRecord:
        """Start the work of a stored record now, inside the RPC; rejections propagate,
        outages are retried."""
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
            self._due_in(self.options.first_poll_seconds)

    async def request_cancel(self, record: OperationRecord) -> None:
        """Poll ``record`` at once, by itself: the poll sends the cancel and follows it."""
        if self.schedule.poke(record.name, alone=True):
            self._wake.set()

    def poke(self, name: str) -> None:
        """Refresh ``name`` soon if this replica tracks it (a hint; Databricks is re-read,
        with its family's next list walk where it has one)."""
        if self.schedule.poke(name):
            self._wake.set()

    # -- the loop -------------------------------------------------------------------------

    def launch(self, supervisor: Supervisor) -> None:
        """Start :meth:`run` under ``supervisor``."""
        self._loop = supervisor.start("tracker", self.run)

    async def run(self) -> None:
        """Claim every third of a lease, and poll what is due; forever (supervised).

        The claims run beside the polls, not between them: the poll loop may wait for a free
        slot (every poll in flight slow), and a renewal must not wait with it.
        """
        async with asyncio.TaskGroup() as group:
            group.create_task(self._claims())
            await self._polls()

    async def _claims(self) -> None:
        while True:
            await self._claim()
            self._wake.set()
            await self.clock.sleep(self.options.lease_seconds / 3)

    async def _polls(self) -> None:
        while True:
            now = self.clock.monotonic()
            for group in self.batcher.groups(self.schedule.due(now), now):
                await self._slots.acquire()
                task = asyncio.create_task(self._poll_guarded(group))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            wake_at = min(self.schedule.next_due(), self.batcher.next_walk())
            self._wake.clear()
            self._sleeps_until = wake_at
            try:
                if wake_at == math.inf:
                    await self._wake.wait()
                    continue
                with contextlib.suppress(TimeoutError):
                    async with self.clock.timeout(wake_at - self.clock.monotonic()):
                        await self._wake.wait()
            finally:
                self._sleeps_until = -math.inf

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
        """Renew this replica's leases and take free operations, up to its share; hand
        what it holds beyond its share to the others."""
        options = self.options
        limit, surplus = await self._share()
        try:
            records = await self.store.claim(options.holder, options.lease_seconds, limit)
        except LroError as exc:
            _log.warning("claiming operations failed: %s", exc)
            return
        claimed = {r.name for r in records}
        # Handed over at once (the others take them at their next claim), but never one
        # being polled right now: never two replicas polling one operation.
        released = self.schedule.idle(sorted(claimed))[:surplus]
        if released:
            _log.info("handing %d operations to other replicas", len(released))
            try:
                await self.store.release(options.holder, released)
            except LroError as exc:
                _log.warning("handing operations over failed: %s", exc)
            else:
                claimed.difference_update(released)
                records = [r for r in records if r.name in claimed]
        self.schedule.keep_only(claimed)
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

    async def _share(self) -> tuple[int, int]:
        """How many operations to claim, and how many of its own to hand over.

        The unfinished operations are divided evenly among the replicas holding some
        (itself included), so that work started through one replica, or left by ones that
        died, spreads over the fleet. A replica renews every lease it holds (one it is
        polling must stay its own), takes free operations up to its even share, and hands
        back what it holds beyond the even share plus 10% (the slack keeps shares from
        churning).
        """
        options = self.options
        try:
            holders = await self.store.lease_holders()
        except LroError as exc:
            _log.warning("reading the fleet's leases failed: %s", exc)
            return options.claim_limit, 0
        replicas = {
            holder: count
            for holder, count in holders.items()
            if holder and holder not in options.pseudo_holders
        }
        mine = replicas.setdefault(options.holder, 0)
        shared = sum(replicas.values()) + holders.get("", 0)
        even = -(-shared // len(replicas))  # rounded up
        keep = even + max(1, even // 10)
        # Room for operations started here since the count was read: all are renewed.
        margin = max(8, even // 20)
        limit = min(options.claim_limit, max(mine, even) + margin)
        return limit, mine - even if mine > keep else 0

    async def _poll_guarded(self, group: PollGroup) -> None:
        names = group.names
        try:
            if group.walk:
                await self._poll_many(names)
            else:
                await self.poller.poll(names[0])
        except Exception:
            _log.exception("%s: poll failed unexpectedly", ", ".join(names[:3]))
            for name in names:
                self.schedule.backoff(name, changed=False)
        finally:
            self._slots.release()
            for name in names:
                self.schedule.finished(name)
            if group.walk:
                self.batcher.walk_done(group.walk)
            self._wake.set()

    async def _poll_many(self, names: list[str]) -> None:
        """Poll one family's operations together (the first ones are due, the rest along)."""
        records: list[OperationRecord] = []
        # One read of many records (against Spanner a round trip each would cost the walk
        # thousands of them), a few hundred at a time.
        for start in range(0, len(names), READ_BATCH):
            chunk = names[start : start + READ_BATCH]
            for name, record in zip(chunk, await self.store.get_many(chunk), strict=True):
                if record is None or record.done:  # deleted or done: no longer tracked
                    self.schedule.drop(name)
                else:
                    records.append(record)
        self.batcher.note(records)
        plan = await self.batcher.plan(self.dbx, names, records, self.poller.needs_attention)
        await self.poller.settle_many(plan.settle)
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
