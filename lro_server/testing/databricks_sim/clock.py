"""Clocks the simulator reads: the monotonic clock by default, a manual one for tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: A source of monotonic seconds; entity states are computed from it on every read.
Clock = Callable[[], float]

__all__ = ["Clock", "ManualClock", "monotonic"]

monotonic: Clock = time.monotonic


class ManualClock:
    """A clock that only moves when told to, so tests never sleep.

    Call the instance to read it (it satisfies :data:`Clock`); :meth:`advance` moves it.
    Thread-safe: tests advance it from their own thread while the simulator reads it.
    """

    def __init__(self, start: float = 1000.0) -> None:
        """Creates a clock reading ``start`` seconds."""
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        """Returns the current reading in seconds."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Moves the clock forward.

        Args:
            seconds: How far to move; must not be negative.

        Returns:
            The new reading.
        """
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go back")
        with self._lock:
            self._now += seconds
            return self._now
