"""The workspace rate limiter: one token bucket for every call to one Databricks workspace.

Calls take a token before they go out; a 429's Retry-After pauses every caller. Calls that
start or stop work (starts and cancels, made inside :func:`urgent`) are served before the
tracker's polls: when both wait, the next token goes to the urgent call, so a burst of
polls never delays a start, and a burst of starts delays polls only.

Time is the injected :class:`~lro_server.core.clock.Clock`'s, so the limiter's behaviour
under bursts is tested on fake time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
from collections.abc import Iterator

from lro_server.core.clock import Clock, SystemClock, Timer

#: Whether calls made in the current context start or stop work (see :func:`urgent`).
_URGENT: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "lro_databricks_urgent", default=False
)


@contextlib.contextmanager
def urgent() -> Iterator[None]:
    """Calls made inside (by this task and the tasks it creates) go before polls."""
    token = _URGENT.set(True)
    try:
        yield
    finally:
        _URGENT.reset(token)


def is_urgent() -> bool:
    """Whether the current context is inside :func:`urgent`."""
    return _URGENT.get()


#: Tolerance of the token count (floating-point refills).
_EPSILON = 1e-9
#: Shortest wait for the next token.
_MIN_WAIT = 0.001


class RateLimiter:
    """Token bucket shared by all calls to one workspace, urgent calls first.

    Args:
        per_second: Tokens added per second (the workspace's call rate).
        burst: Most tokens kept (default: one second's worth, at least 1).
        clock: Time of refills, pauses and waits.

    Attributes:
        waits: Calls that had to wait for a token (for metrics).
    """

    def __init__(
        self, per_second: float, burst: float | None = None, *, clock: Clock | None = None
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self._rate = per_second
        self._burst = burst if burst is not None else max(1.0, per_second)
        self._clock: Clock = clock or SystemClock()
        self._tokens = self._burst
        self._updated = self._clock.monotonic()
        self._paused_until = 0.0
        # Waiting callers, urgent ones first; each is woken by the future it waits on.
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._normal: collections.deque[asyncio.Future[None]] = collections.deque()
        self._timer: Timer | None = None
        self._timer_due = 0.0
        self.waits = 0

    @property
    def waiting(self) -> int:
        """Callers waiting for a token now."""
        return sum(not f.done() for f in self._urgent) + sum(not f.done() for f in self._normal)

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` (Retry-After of a 429)."""
        until = self._clock.monotonic() + seconds
        if until > self._paused_until:
            self._paused_until = until
            self._dispatch()

    async def acquire(self, *, urgent: bool | None = None) -> None:
        """Wait for a token; ``urgent`` defaults to whether the caller is inside
        :func:`urgent`."""
        first = is_urgent() if urgent is None else urgent
        if not self._urgent and not self._normal and self._take():
            return
        self.waits += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._urgent if first else self._normal).append(future)
        self._dispatch()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._tokens += 1  # granted just as the caller gave up: give it back
            self._dispatch()
            raise

    def _take(self) -> bool:
        """Take a token if one is there now (refilling first)."""
        now = self._clock.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        # A refill computed in floating point lands a hair below a whole token at the
        # moment the timer was armed for: count that as the token.
        if now < self._paused_until or self._tokens < 1 - _EPSILON:
            return False
        self._tokens = max(0.0, self._tokens - 1)
        return True

    def _prune(self) -> None:
        """Drop the callers at the queues' heads that were cancelled while waiting."""
        for queue in (self._urgent, self._normal):
            while queue and queue[0].done():
                queue.popleft()

    def _dispatch(self) -> None:
        """Hand tokens to waiting callers, urgent ones first; arm a timer for the rest."""
        self._prune()
        while True:
            queue = self._urgent or self._normal
            if not queue:
                return
            if not self._take():
                break
            queue.popleft().set_result(None)
            self._prune()
        now = self._clock.monotonic()
        # At least a millisecond ahead: a wake-up at (almost) the same instant refills
        # nothing and would only arm another.
        due = max(self._paused_until, now + max(_MIN_WAIT, (1 - self._tokens) / self._rate))
        if self._timer is not None and self._timer_due <= due:
            return  # an earlier wake-up is armed; it re-arms if needed
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = due
        self._timer = self._clock.call_later(due - now, self._wake)

    def _wake(self) -> None:
        self._timer = None
        self._dispatch()
