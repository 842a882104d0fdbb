"""In-process wake-ups: WaitOperation callers wait here, writers of done records signal here.

One asyncio.Event per watched operation, shared by all its waiters, so waking 10,000
waiters of the same or different operations costs one ``set()`` each and no store reads.
Across replicas there is no signal; ``OperationsService.wait`` re-reads the store at a
bounded interval instead.
"""

from __future__ import annotations

import asyncio

from lro_server.core.errors import ResourceExhausted


class Notifier:
    """Wakes waiters of an operation when it changes in this process.

    Args:
        max_waiters: Waiters beyond this many get ResourceExhausted instead of memory.
    """

    def __init__(self, max_waiters: int = 20000) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._counts: dict[str, int] = {}
        self._waiters = 0
        self._max_waiters = max_waiters
        self._draining = False

    @property
    def waiters(self) -> int:
        """Number of calls currently waiting."""
        return self._waiters

    @property
    def draining(self) -> bool:
        """Whether the server is stopping: waits end at once with the latest state."""
        return self._draining

    def drain(self) -> None:
        """Wake every waiter now and let later waits return at once (graceful shutdown)."""
        self._draining = True
        for event in self._events.values():
            event.set()

    def notify(self, name: str) -> None:
        """Wake every waiter of ``name`` (cheap no-op when nobody waits)."""
        event = self._events.get(name)
        if event is not None:
            event.set()

    async def wait(self, name: str, timeout: float) -> bool:
        """Wait until ``name`` is notified or ``timeout`` seconds pass; True if notified."""
        if self._draining:
            return True
        if self._waiters >= self._max_waiters:
            raise ResourceExhausted(
                f"too many concurrent WaitOperation calls (limit {self._max_waiters})",
                reason="TOO_MANY_WAITERS",
                metadata={"limit": str(self._max_waiters)},
            )
        event = self._events.get(name)
        if event is None or event.is_set():
            event = self._events[name] = asyncio.Event()
        self._counts[name] = self._counts.get(name, 0) + 1
        self._waiters += 1
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters -= 1
            remaining = self._counts[name] - 1
            if remaining:
                self._counts[name] = remaining
            else:
                del self._counts[name]
                if self._events.get(name) is event:
                    del self._events[name]
