"""How a failing step is tried again: a plain, frozen retry policy with exponential backoff."""

from __future__ import annotations

import dataclasses
from datetime import timedelta


@dataclasses.dataclass(frozen=True, slots=True)
class Retry:
    """Retry policy of a step. The waits between attempts are durable timers (they survive
    restarts and hold nothing open), like :meth:`Context.sleep`.

    Attributes:
        max_attempts: Attempts in all, the first included (1: never retried).
        initial_backoff: Wait before the second attempt.
        max_backoff: Longest wait between two attempts.
        multiplier: Factor between two consecutive waits.
    """

    max_attempts: int = 3
    initial_backoff: timedelta = timedelta(seconds=1)
    max_backoff: timedelta = timedelta(minutes=1)
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("Retry.max_attempts must be at least 1")
        if self.initial_backoff < timedelta(0) or self.max_backoff < timedelta(0):
            raise ValueError("Retry backoffs must not be negative")
        if self.multiplier < 1.0:
            raise ValueError("Retry.multiplier must be at least 1")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (from 1)."""
        seconds = self.initial_backoff.total_seconds() * self.multiplier ** max(0, attempt - 1)
        return min(seconds, self.max_backoff.total_seconds())
