"""A store wrapper that tells in-process listeners about every change it writes.

All writers of a server process (RPC handlers, the tracker, waiters) share one
ObservedStore, so WaitOperation wake-ups and caches never depend on who wrote.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from lro_server.core.errors import LroError
from lro_server.core.record import OperationRecord
from lro_server.core.store import ExpiryCursor, JournalEvent, ListQuery, OperationStore

_log = logging.getLogger(__name__)

#: Called with the operation's name and its new record (None once deleted).
Listener = Callable[[str, OperationRecord | None], None]


class ObservedStore:
    """OperationStore that calls listeners after each successful write."""

    def __init__(self, inner: OperationStore, listeners: list[Listener] | None = None) -> None:
        self.inner = inner
        self._listeners: list[Listener] = list(listeners or [])
        #: See OperationStore.get. The inner store's own method: a read changes nothing to
        #: observe, and every GetOperation and WaitOperation passes here (no extra coroutine).
        self.get: Callable[[str], Coroutine[Any, Any, OperationRecord]] = inner.get
        #: See OperationStore.cached (the inner store's own method, as get).
        self.cached: Callable[[str], OperationRecord | None] = inner.cached

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` after every write from now on."""
        self._listeners.append(listener)

    def _changed(self, name: str, record: OperationRecord | None) -> None:
        for listener in self._listeners:
            try:
                listener(name, record)
            except Exception:
                # A listener bug must not turn a committed write into a failed RPC.
                _log.exception("listener failed for %s", name)

    async def create(self, record: OperationRecord) -> tuple[OperationRecord, bool]:
        """See OperationStore.create."""
        stored, created = await self.inner.create(record)
        if created:
            self._changed(stored.name, stored)
        return stored, created

    async def get_many(self, names: Sequence[str]) -> builtins.list[OperationRecord | None]:
        """See OperationStore.get_many."""
        return await self.inner.get_many(names)

    async def list(self, query: ListQuery) -> builtins.list[OperationRecord]:
        """See OperationStore.list."""
        return await self.inner.list(query)

    async def update(
        self, record: OperationRecord, *, journal: Sequence[JournalEvent] = ()
    ) -> OperationRecord:
        """See OperationStore.update."""
        stored = await self.inner.update(record, journal=journal)
        self._changed(stored.name, stored)
        return stored

    async def append(self, record: OperationRecord, journal: Sequence[JournalEvent]) -> None:
        """See OperationStore.append; no record changes, so no listener hears of it."""
        await self.inner.append(record, journal)

    async def update_many(
        self, records: Sequence[OperationRecord]
    ) -> builtins.list[OperationRecord | LroError]:
        """See OperationStore.update_many; listeners hear of each record written."""
        results = await self.inner.update_many(records)
        for result in results:
            if not isinstance(result, LroError):
                self._changed(result.name, result)
        return results

    async def journal(self, name: str, after_seq: int = 0) -> builtins.list[JournalEvent]:
        """See OperationStore.journal."""
        return await self.inner.journal(name, after_seq)

    async def delete(self, name: str) -> None:
        """See OperationStore.delete."""
        await self.inner.delete(name)
        self._changed(name, None)

    async def expired(
        self, before_us: int, after: ExpiryCursor | None, limit: int
    ) -> builtins.list[OperationRecord]:
        """See OperationStore.expired."""
        return await self.inner.expired(before_us, after, limit)

    async def claim(
        self, holder: str, lease_seconds: float, limit: int
    ) -> builtins.list[OperationRecord]:
        """See OperationStore.claim."""
        return await self.inner.claim(holder, lease_seconds, limit)

    async def release(self, holder: str, names: builtins.list[str]) -> None:
        """See OperationStore.release."""
        await self.inner.release(holder, names)

    async def lease_holders(self) -> dict[str, int]:
        """See OperationStore.lease_holders."""
        return await self.inner.lease_holders()

    async def ping(self) -> None:
        """See OperationStore.ping."""
        await self.inner.ping()

    async def close(self) -> None:
        """See OperationStore.close."""
        await self.inner.close()
