"""Time, injectable: the system clock for the server, a fake one for tests."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Wall time and sleeping, so pollers and deadlines can be driven by tests."""

    def now(self) -> datetime:
        """Current UTC time."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds``."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Current UTC time."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(seconds)


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch (the stores' timestamp representation)."""
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def from_micros(micros: int) -> datetime:
    """Inverse of :func:`to_micros`."""
    return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)


def monotonic() -> float:
    """Monotonic seconds, for measuring durations."""
    return time.monotonic()
