"""A store wrapper that measures every call: latency, errors, and the leased operation set.

It sits directly around the backend (``ObservedStore(MeasuredStore(backend))``), so latency
is the backend's own, whichever layer calls it. It also tells its unavailability listeners
(the health monitor) at once when a call fails with Unavailable, so that readiness does not
wait for the next scheduled ping to notice an outage.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from lro_server.core.errors import Code, LroError
from lro_server.core.metrics import Metrics
from lro_server.core.record import OperationRecord
from lro_server.core.store import ExpiryCursor, JournalEvent, ListQuery, OperationStore

T = TypeVar("T")


class MeasuredStore:
    """OperationStore that records each call in ``metrics``."""

    def __init__(self, inner: OperationStore, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics
        self._unavailable: list[Callable[[], None]] = []
        # Label sets resolved once: every store call observes one.
        self._timers = {
            m: metrics.store_duration.slot(m)
            for m in (
                "create",
                "get",
                "get_many",
                "list",
                "update",
                "append",
                "update_many",
                "journal",
                "delete",
                "expired",
                "claim",
                "release",
                "lease_holders",
                "ping",
            )
        }
        self._rows = metrics.store_batched_rows.slot()
        #: See OperationStore.cached: the inner store's own method, not measured (it makes
        #: no call: nothing to time, nothing that fails), and GetOperation asks it first.
        self.cached: Callable[[str], OperationRecord | None] = inner.cached
        self._get_timer = self._timers["get"]

    def add_unavailable_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` whenever a store call other than ``ping`` (the health
        monitor's own, which it judges itself) fails with Unavailable."""
        self._unavailable.append(listener)

    def _failed(self, method: str, exc: Exception) -> None:
        """Count the failure by its code (INTERNAL for anything but an LroError) and tell the
        unavailability listeners of an Unavailable."""
        if not isinstance(exc, LroError):
            self.metrics.store_errors.labels(method, "INTERNAL").inc()
            return
        self.metrics.store_errors.labels(method, exc.code.name).inc()
        if exc.code is Code.UNAVAILABLE and method != "ping":
            for listener in self._unavailable:
                listener()

    async def _timed(self, method: str, call: Callable[[], Awaitable[T]]) -> T:
        started = time.perf_counter()
        try:
            return await call()
        except Exception as exc:
            self._failed(method, exc)
            raise
        finally:
            self._timers[method].add(time.perf_counter() - started)

    async def create(self, record: OperationRecord) -> tuple[OperationRecord, bool]:
        """See OperationStore.create."""
        return await self._timed("create", lambda: self.inner.create(record))

    async def get(self, name: str) -> OperationRecord:
        """See OperationStore.get."""
        # Inlined rather than through _timed: every GetOperation and WaitOperation reads
        # here, and the closure plus the extra coroutine cost more than the read's metrics.
        started = time.perf_counter()
        try:
            return await self.inner.get(name)
        except Exception as exc:
            self._failed("get", exc)
            raise
        finally:
            self._get_timer.add(time.perf_counter() - started)

    async def get_many(self, names: Sequence[str]) -> builtins.list[OperationRecord | None]:
        """See OperationStore.get_many."""
        return await self._timed("get_many", lambda: self.inner.get_many(names))

    async def list(self, query: ListQuery) -> builtins.list[OperationRecord]:
        """See OperationStore.list."""
        return await self._timed("list", lambda: self.inner.list(query))

    async def update(
        self, record: OperationRecord, *, journal: Sequence[JournalEvent] = ()
    ) -> OperationRecord:
        """See OperationStore.update."""
        return await self._timed("update", lambda: self.inner.update(record, journal=journal))

    async def append(self, record: OperationRecord, journal: Sequence[JournalEvent]) -> None:
        """See OperationStore.append."""
        await self._timed("append", lambda: self.inner.append(record, journal))

    async def journal(self, name: str, after_seq: int = 0) -> builtins.list[JournalEvent]:
        """See OperationStore.journal."""
        return await self._timed("journal", lambda: self.inner.journal(name, after_seq))

    async def update_many(
        self, records: Sequence[OperationRecord]
    ) -> builtins.list[OperationRecord | LroError]:
        """See OperationStore.update_many (timed as one call; ``lro_store_batched_rows`` counts
        the records written)."""
        results = await self._timed("update_many", lambda: self.inner.update_many(records))
        self._rows.n += sum(1 for r in results if not isinstance(r, LroError))
        return results

    async def delete(self, name: str) -> None:
        """See OperationStore.delete."""
        await self._timed("delete", lambda: self.inner.delete(name))

    async def expired(
        self, before_us: int, after: ExpiryCursor | None, limit: int
    ) -> builtins.list[OperationRecord]:
        """See OperationStore.expired."""
        return await self._timed("expired", lambda: self.inner.expired(before_us, after, limit))

    async def claim(
        self, holder: str, lease_seconds: float, limit: int
    ) -> builtins.list[OperationRecord]:
        """See OperationStore.claim; the claimed set becomes this replica's active gauge."""
        records = await self._timed("claim", lambda: self.inner.claim(holder, lease_seconds, limit))
        self.metrics.active.claimed(records)
        return records

    async def release(self, holder: str, names: builtins.list[str]) -> None:
        """See OperationStore.release."""
        await self._timed("release", lambda: self.inner.release(holder, names))

    async def lease_holders(self) -> dict[str, int]:
        """See OperationStore.lease_holders."""
        return await self._timed("lease_holders", self.inner.lease_holders)

    async def ping(self) -> None:
        """See OperationStore.ping."""
        await self._timed("ping", self.inner.ping)

    async def close(self) -> None:
        """See OperationStore.close."""
        await self.inner.close()
