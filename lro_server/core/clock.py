"""Time, injected: wall time, monotonic time, sleeping, timeouts and timers in one object.

Every part of the engine that reads or waits for time takes a :class:`Clock`: the server
passes :class:`SystemClock`; unit tests pass ``lro_server.testing.FakeClock``, whose time
moves only when the test moves it, so deadlines, back-off, leases and timers are tested
without waiting and without sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol


class Timer(Protocol):
    """A callback scheduled by :meth:`Clock.call_later`."""

    def cancel(self) -> None:
        """Do not call the callback (no-op once it ran)."""
        ...


class Clock(Protocol):
    """The one source of time of a server."""

    def now(self) -> datetime:
        """Current UTC time (wall clock: timestamps, deadlines stored with operations)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (intervals, schedules)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` of this clock's time."""
        ...

    def timeout(self, seconds: float) -> contextlib.AbstractAsyncContextManager[object]:
        """``async with clock.timeout(s):`` raises TimeoutError once ``s`` seconds pass."""
        ...

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """Call ``callback`` on the event loop after ``seconds``."""
        ...


class SystemClock:
    """The real clock: asyncio's own sleep, timeout and timers."""

    def now(self) -> datetime:
        """Current UTC time."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(seconds)

    def timeout(self, seconds: float) -> contextlib.AbstractAsyncContextManager[object]:
        """``asyncio.timeout`` (no task or timer beyond asyncio's own)."""
        return asyncio.timeout(max(0.0, seconds))

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """``loop.call_later``."""
        return asyncio.get_running_loop().call_later(max(0.0, seconds), callback)


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch (the stores' timestamp representation)."""
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def from_micros(micros: int) -> datetime:
    """Inverse of :func:`to_micros`."""
    return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)


def now_us(clock: Clock) -> int:
    """``clock``'s wall time in microseconds since the epoch."""
    return to_micros(clock.now())
