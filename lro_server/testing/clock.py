"""FakeClock: a Clock whose time moves only when the test moves it.

Sleeps, timeouts and timers of code under test wait for fake time: ``await
clock.advance(5)`` moves time forward in steps, firing every timer that falls due on the
way in order and letting the woken coroutines run after each one (so a coroutine that
sleeps again inside the window is woken again). Nothing waits for real time, so a unit test
of a deadline of an hour takes microseconds and never flakes under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

#: Where a FakeClock starts unless told otherwise: a fixed, recognisable moment.
DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)
#: Loop iterations :meth:`FakeClock.settle` lets pass: enough for chains of awaits that
#: never touch a socket (in-memory and SQLite stores, fakes).
SETTLE_ROUNDS = 50


class FakeTimer:
    """A scheduled callback of a :class:`FakeClock`."""

    __slots__ = ("callback", "cancelled", "due")

    def __init__(self, due: float, callback: Callable[[], None]) -> None:
        self.due = due
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Do not fire."""
        self.cancelled = True


class FakeClock:
    """A :class:`lro_server.core.clock.Clock` driven by the test.

    Args:
        start: The initial wall time (timezone-aware); :data:`DEFAULT_START` by default.

    Attributes:
        sleeps: Every duration passed to :meth:`sleep`, in order (for asserting back-off).
    """

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        self._now = _aware(start)
        self._mono = 1000.0
        self._timers: list[tuple[float, int, FakeTimer]] = []
        self._seq = itertools.count()
        self.sleeps: list[float] = []

    # -- reading ---------------------------------------------------------------------------

    def now(self) -> datetime:
        """The current fake UTC time."""
        return self._now

    def monotonic(self) -> float:
        """Fake monotonic seconds (moves with :meth:`advance`, never with :meth:`set`)."""
        return self._mono

    @property
    def pending(self) -> int:
        """Timers (sleeps, timeouts, call_later) not fired or cancelled yet."""
        return sum(1 for _, _, timer in self._timers if not timer.cancelled)

    def next_due(self) -> float | None:
        """Seconds until the earliest pending timer, or None."""
        live = [due for due, _, timer in self._timers if not timer.cancelled]
        return max(0.0, min(live) - self._mono) if live else None

    # -- moving ----------------------------------------------------------------------------

    def set(self, moment: datetime) -> None:
        """Jump the wall clock to ``moment`` (which may be earlier: clock-skew tests need
        that); monotonic time and timers are not affected."""
        self._now = _aware(moment)

    def step(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and fire due timers, without yielding (for
        synchronous tests; woken coroutines run at the test's next await)."""
        if seconds < 0:
            raise ValueError(f"cannot advance by a negative duration ({seconds})")
        target = self._mono + seconds
        while self._timers and self._timers[0][0] <= target:
            due, _, timer = heapq.heappop(self._timers)
            self._move_to(due)
            if not timer.cancelled:
                timer.callback()
        self._move_to(target)

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, stopping at every timer that falls due: fire
        it, then let the woken coroutines run (:meth:`settle`) before going on."""
        if seconds < 0:
            raise ValueError(f"cannot advance by a negative duration ({seconds})")
        await self.settle()
        target = self._mono + seconds
        while True:
            self._drop_cancelled()
            if not self._timers or self._timers[0][0] > target:
                break
            due, _, timer = heapq.heappop(self._timers)
            self._move_to(due)
            timer.callback()
            await self.settle()
        self._move_to(target)
        await self.settle()

    async def settle(self, rounds: int = SETTLE_ROUNDS) -> None:
        """Let runnable coroutines run (``rounds`` passes of the event loop), time standing."""
        for _ in range(rounds):
            await asyncio.sleep(0)

    # -- waiting ---------------------------------------------------------------------------

    async def sleep(self, seconds: float) -> None:
        """Wait until the test has advanced time by ``seconds`` (at least 0)."""
        seconds = max(0.0, seconds)
        self.sleeps.append(seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.call_later(seconds, wake)
        try:
            await future
        finally:
            timer.cancel()

    @contextlib.asynccontextmanager
    async def timeout(self, seconds: float) -> AsyncIterator[None]:
        """Raise TimeoutError in the body once fake time passed ``seconds``."""
        # asyncio's own Timeout does the cancelling and uncancelling; the fake timer only
        # tells it when (now, in loop time) to fire.
        async with asyncio.timeout(None) as real:
            loop = asyncio.get_running_loop()
            timer = self.call_later(seconds, lambda: real.reschedule(loop.time()))
            try:
                yield
            finally:
                timer.cancel()

    def call_later(self, seconds: float, callback: Callable[[], None]) -> FakeTimer:
        """Call ``callback`` once fake time reaches now + ``seconds``."""
        timer = FakeTimer(self._mono + max(0.0, seconds), callback)
        heapq.heappush(self._timers, (timer.due, next(self._seq), timer))
        return timer

    # -- plumbing --------------------------------------------------------------------------

    def _move_to(self, mono: float) -> None:
        if mono > self._mono:
            self._now += timedelta(seconds=mono - self._mono)
            self._mono = mono

    def _drop_cancelled(self) -> None:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)


def _aware(moment: datetime) -> datetime:
    # Naive datetimes would silently mean local time in to_micros(); refuse them.
    if moment.tzinfo is None:
        raise ValueError("FakeClock needs timezone-aware datetimes")
    return moment.astimezone(UTC)
