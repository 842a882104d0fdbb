"""FlakyStore: an OperationStore wrapper that fails on purpose, for fault tests.

Two kinds of failure, both raised as Unavailable (what a real backend raises when it
cannot be reached):

- an outage: :meth:`FlakyStore.down` makes every call fail until :meth:`FlakyStore.up`;
- transient errors: each call fails with ``probability`` (seeded, so runs repeat), either
  before it reaches the store or, for writes, after the write was applied (the answer is
  lost: the caller must find out by re-reading, as with a real commit of unknown outcome).
"""

from __future__ import annotations

import builtins
import random
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from lro_server.core.errors import LroError, Unavailable
from lro_server.core.record import OperationRecord
from lro_server.core.store import ExpiryCursor, JournalEvent, ListQuery, OperationStore

_T = TypeVar("_T")


class FlakyStore:
    """Wraps ``inner`` and injects Unavailable errors.

    Args:
        inner: The real store.
        probability: Chance that a call fails (0: only outages fail).
        lost_answer_share: Of the failing writes, the share applied before failing.
        lost_answer_methods: The writes that may lose their answer.
        seed: Seed of the random generator.

    Attributes:
        injected: Failures injected so far, by method name.
    """

    def __init__(
        self,
        inner: OperationStore,
        *,
        probability: float = 0.0,
        lost_answer_share: float = 0.0,
        lost_answer_methods: frozenset[str] = frozenset(
            {"create", "update", "update_many", "delete"}
        ),
        seed: int = 0,
    ) -> None:
        self.inner = inner
        self.probability = probability
        self.lost_answer_share = lost_answer_share
        self.lost_answer_methods = lost_answer_methods
        self.injected: dict[str, int] = {}
        self._rng = random.Random(seed)
        self._down = False
        self._lock = threading.Lock()  # tests flip the switches from another thread

    @property
    def total_injected(self) -> int:
        """Every failure injected so far."""
        with self._lock:
            return sum(self.injected.values())

    def down(self) -> None:
        """Start an outage: every call fails until :meth:`up`."""
        self._down = True

    def up(self) -> None:
        """End the outage."""
        self._down = False

    def _draw(self, method: str, *, write: bool = False) -> str:
        """ "" to pass, "before" or "after" to fail around the call."""
        with self._lock:
            if self._down:
                fail = "before"
            elif self.probability and self._rng.random() < self.probability:
                lost = (
                    write
                    and method in self.lost_answer_methods
                    and self._rng.random() < self.lost_answer_share
                )
                fail = "after" if lost else "before"
            else:
                return ""
            self.injected[method] = self.injected.get(method, 0) + 1
            return fail

    @staticmethod
    def _error(method: str) -> Unavailable:
        return Unavailable(f"store unavailable (injected in {method})", reason="STORE_UNAVAILABLE")

    async def _read(self, method: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """``call()``, unless this call fails before it reaches the store."""
        if self._draw(method):
            raise self._error(method)
        return await call()

    async def _write(self, method: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """``call()``, unless this call fails before it reaches the store or after it was
        applied (the answer is lost)."""
        fail = self._draw(method, write=True)
        if fail == "before":
            raise self._error(method)
        result = await call()
        if fail == "after":
            raise self._error(method)
        return result

    async def create(self, record: OperationRecord) -> tuple[OperationRecord, bool]:
        """See OperationStore.create."""
        return await self._write("create", lambda: self.inner.create(record))

    async def get(self, name: str) -> OperationRecord:
        """See OperationStore.get."""
        return await self._read("get", lambda: self.inner.get(name))

    def cached(self, name: str) -> OperationRecord | None:
        """None: every read goes through get, where failures are injected."""
        return None

    async def get_many(self, names: Sequence[str]) -> builtins.list[OperationRecord | None]:
        """See OperationStore.get_many."""
        return await self._read("get_many", lambda: self.inner.get_many(names))

    async def list(self, query: ListQuery) -> builtins.list[OperationRecord]:
        """See OperationStore.list."""
        return await self._read("list", lambda: self.inner.list(query))

    async def update(
        self, record: OperationRecord, *, journal: Sequence[JournalEvent] = ()
    ) -> OperationRecord:
        """See OperationStore.update."""
        return await self._write("update", lambda: self.inner.update(record, journal=journal))

    async def append(self, record: OperationRecord, journal: Sequence[JournalEvent]) -> None:
        """See OperationStore.append."""
        await self._write("append", lambda: self.inner.append(record, journal))

    async def update_many(
        self, records: Sequence[OperationRecord]
    ) -> builtins.list[OperationRecord | LroError]:
        """See OperationStore.update_many (one draw for the whole transaction)."""
        return await self._write("update_many", lambda: self.inner.update_many(records))

    async def expired(
        self, before_us: int, after: ExpiryCursor | None, limit: int
    ) -> builtins.list[OperationRecord]:
        """See OperationStore.expired."""
        return await self._read("expired", lambda: self.inner.expired(before_us, after, limit))

    async def journal(self, name: str, after_seq: int = 0) -> builtins.list[JournalEvent]:
        """See OperationStore.journal."""
        return await self._read("journal", lambda: self.inner.journal(name, after_seq))

    async def delete(self, name: str) -> None:
        """See OperationStore.delete."""
        await self._write("delete", lambda: self.inner.delete(name))

    async def claim(
        self, holder: str, lease_seconds: float, limit: int
    ) -> builtins.list[OperationRecord]:
        """See OperationStore.claim."""
        return await self._read("claim", lambda: self.inner.claim(holder, lease_seconds, limit))

    async def release(self, holder: str, names: Sequence[str]) -> None:
        """See OperationStore.release."""
        await self._read("release", lambda: self.inner.release(holder, list(names)))

    async def lease_holders(self) -> dict[str, int]:
        """See OperationStore.lease_holders."""
        return await self._read("lease_holders", self.inner.lease_holders)

    async def ping(self) -> None:
        """See OperationStore.ping."""
        if self._down:
            raise self._error("ping")
        await self.inner.ping()

    async def close(self) -> None:
        """Close the inner store."""
        await self.inner.close()
