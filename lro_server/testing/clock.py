"""FakeClock: a Clock whose time only moves when a test (or a sleeper) moves it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

#: Where a FakeClock starts unless told otherwise: a fixed, recognisable moment.
DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)


class FakeClock:
    """A :class:`lro_server.core.clock.Clock` driven by the test.

    ``now()`` stands still until :meth:`set` or :meth:`advance` moves it, so tests can
    produce equal timestamps, expire leases and time out deadlines without waiting.
    ``sleep()`` advances the time by the requested amount and yields to the event loop
    once, so code that polls in a loop makes progress without real delays.

    Args:
        start: The initial time (timezone-aware); :data:`DEFAULT_START` by default.

    Attributes:
        sleeps: Every duration passed to :meth:`sleep`, in order (for asserting backoff).
    """

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        self._now = _aware(start)
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        """The current fake UTC time."""
        return self._now

    def set(self, moment: datetime) -> None:
        """Jump to ``moment`` (which may be earlier: tests of clock skew need that)."""
        self._now = _aware(moment)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (negative values are rejected)."""
        if seconds < 0:
            raise ValueError(f"cannot advance by a negative duration ({seconds})")
        self._now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        """Advance time by ``seconds`` (at least 0) and let other tasks run once."""
        seconds = max(0.0, seconds)
        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)


def _aware(moment: datetime) -> datetime:
    # Naive datetimes would silently mean local time in to_micros(); refuse them.
    if moment.tzinfo is None:
        raise ValueError("FakeClock needs timezone-aware datetimes")
    return moment.astimezone(UTC)
