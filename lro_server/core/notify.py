"""In-process wake-ups: WaitOperation callers wait here, writers of done records signal here.

One asyncio.Event per watched operation, shared by all its waiters, so waking 10,000
waiters of the same or different operations costs one ``set()`` each. The writer hands the
record it wrote to ``notify``, and every waiter it wakes gets that record: no store reads
either. Across replicas there is no signal; ``OperationsService.wait`` re-reads the store
at a bounded interval instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

from lro_server.core.clock import Clock, SystemClock
from lro_server.core.errors import ResourceExhausted
from lro_server.core.record import OperationRecord


@dataclasses.dataclass(frozen=True, slots=True)
class Wake:
    """How a wait ended; true when notified (rather than timed out).

    Attributes:
        notified: The operation was notified (or the server is draining).
        record: The record the writer wrote, when it handed one over (None after a
            delete, a drain, or a timeout).
    """

    notified: bool
    record: OperationRecord | None = None

    def __bool__(self) -> bool:
        return self.notified


class _Slot:
    """The event all waiters of one operation share, and the record that set it."""

    __slots__ = ("event", "record")

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.record: OperationRecord | None = None


_TIMED_OUT = Wake(False)
_NOTIFIED = Wake(True)


class Notifier:
    """Wakes waiters of an operation when it changes in this process.

    Args:
        max_waiters: Waiters beyond this many get ResourceExhausted instead of memory.
        clock: Time source of the waits' timeouts.
    """

    def __init__(self, max_waiters: int = 20000, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or SystemClock()
        self._slots: dict[str, _Slot] = {}
        self._counts: dict[str, int] = {}
        self._waiters = 0
        self._max_waiters = max_waiters
        self._draining = False

    @property
    def waiters(self) -> int:
        """Number of WaitOperation calls currently held (admitted)."""
        return self._waiters

    @property
    def draining(self) -> bool:
        """Whether the server is stopping: waits end at once with the latest state."""
        return self._draining

    def drain(self) -> None:
        """Wake every waiter now and let later waits return at once (graceful shutdown)."""
        self._draining = True
        for slot in self._slots.values():
            slot.event.set()

    def watched(self, name: str) -> int:
        """Number of waits on ``name`` right now."""
        return self._counts.get(name, 0)

    def notify(self, name: str, record: OperationRecord | None = None) -> None:
        """Wake every waiter of ``name`` (cheap no-op when nobody waits).

        Args:
            name: The operation that changed.
            record: The record just written (None after a delete): waiters take it
                instead of reading the store again.
        """
        slot = self._slots.get(name)
        if slot is not None:
            slot.record = record
            slot.event.set()

    def admit(self) -> contextlib.AbstractContextManager[None]:
        """Hold a waiter slot for a whole WaitOperation call (``with notifier.admit():``).

        Counted once per call, not per :meth:`wait`: a call between two waits (re-reading
        the store) keeps its slot, so newcomers can never push out a call already held.

        Raises:
            ResourceExhausted: ``max_waiters`` calls are already held.
        """
        if self._waiters >= self._max_waiters:
            raise ResourceExhausted(
                f"too many concurrent WaitOperation calls (limit {self._max_waiters})",
                reason="TOO_MANY_WAITERS",
                metadata={"limit": str(self._max_waiters)},
            )
        self._waiters += 1
        return _Admission(self)

    def _release(self) -> None:
        self._waiters -= 1

    async def wait(self, name: str, timeout: float) -> Wake:
        """Wait until ``name`` is notified or ``timeout`` seconds pass (inside :meth:`admit`)."""
        if self._draining:
            return _NOTIFIED
        slot = self._slots.get(name)
        if slot is None or slot.event.is_set():
            slot = self._slots[name] = _Slot()
        self._counts[name] = self._counts.get(name, 0) + 1
        try:
            async with self._clock.timeout(timeout):
                await slot.event.wait()
            return Wake(True, slot.record)
        except TimeoutError:
            return _TIMED_OUT
        finally:
            remaining = self._counts[name] - 1
            if remaining:
                self._counts[name] = remaining
            else:
                del self._counts[name]
                if self._slots.get(name) is slot:
                    del self._slots[name]


class _Admission:
    """Gives a waiter slot back when the call ends."""

    __slots__ = ("_notifier",)

    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        self._notifier._release()
