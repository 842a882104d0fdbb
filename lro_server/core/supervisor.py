"""Supervisor: runs the server's background loops, restarts one that dies, and says which are down.

Every loop of the server that runs for its whole life (the tracker, the health watcher,
the embedded waiter's re-read, the sweep for stalled chains) is started here rather than
with a bare ``create_task``, so that a bug that ends one cannot go unnoticed:

- the loop's exception is logged with its traceback;
- the loop is started again after a backoff (``first_backoff`` doubling up to
  ``max_backoff``; back to ``first_backoff`` once a run lasted ``max_backoff``), waited
  for with the injected clock so tests drive it without sleeping;
- while it waits, the loop counts as *down*: :attr:`Supervisor.down` names it with the
  reason, and the listeners (the health monitor) are told at once, so the server reports
  NOT_SERVING on gRPC health and 503 on ``/readyz`` until the loop runs again.

A loop that returns counts as dead too: these loops are meant to run until stopped.
Stopping a loop (:meth:`Supervised.stop`) or the supervisor (:meth:`Supervisor.stop`)
cancels it; that is never a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from lro_server.core.clock import Clock, SystemClock

_log = logging.getLogger(__name__)

#: The body of a background loop: a coroutine function that runs until cancelled.
LoopBody = Callable[[], Awaitable[None]]
#: Told (and awaited) whenever a loop goes down or runs again.
Listener = Callable[[], Awaitable[None]]


class Supervised:
    """One supervised loop, as :meth:`Supervisor.start` returns it.

    Attributes:
        name: The loop's name (unique among the supervisor's loops).
        reason: Why the loop is down ("" while it runs).
        restarts: How often it was started again after dying.
    """

    def __init__(self, supervisor: Supervisor, name: str) -> None:
        self.name = name
        self.reason = ""
        self.restarts = 0
        self._supervisor = supervisor
        self._task: asyncio.Task[None] | None = None

    @property
    def down(self) -> bool:
        """Whether the loop died and waits to be started again."""
        return bool(self.reason)

    async def stop(self) -> None:
        """Cancel the loop and wait for it to end. Idempotent."""
        task, self._task = self._task, None
        self._supervisor.forget(self)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class Supervisor:
    """Starts background loops and keeps them running.

    Args:
        clock: Sleeps between restarts and measures how long a run lasted.
        first_backoff: Seconds before the first restart of a loop that died.
        max_backoff: Longest wait between restarts; a run that lasted this long resets
            the wait to ``first_backoff``.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        first_backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        if first_backoff <= 0 or max_backoff < first_backoff:
            raise ValueError("need 0 < first_backoff <= max_backoff")
        self._clock: Clock = clock or SystemClock()
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self._loops: dict[str, Supervised] = {}
        self._listeners: list[Listener] = []
        #: Restarts of every loop so far.
        self.restarts = 0

    @property
    def down(self) -> dict[str, str]:
        """The loops that are down, by name, with the reason."""
        return {name: loop.reason for name, loop in self._loops.items() if loop.down}

    @property
    def loops(self) -> list[Supervised]:
        """Every loop started and not stopped."""
        return list(self._loops.values())

    def add_listener(self, listener: Listener) -> None:
        """Await ``listener()`` whenever a loop goes down or runs again."""
        self._listeners.append(listener)

    def start(self, name: str, body: LoopBody) -> Supervised:
        """Run ``body()`` in the background, under supervision (needs a running loop).

        Raises:
            ValueError: A loop of this name runs already.
        """
        if name in self._loops:
            raise ValueError(f"a background loop named {name!r} runs already")
        loop = Supervised(self, name)
        self._loops[name] = loop
        loop._task = asyncio.get_running_loop().create_task(self._supervise(loop, body), name=name)
        return loop

    def forget(self, loop: Supervised) -> None:
        """Stop counting ``loop`` (it was stopped on purpose)."""
        if self._loops.get(loop.name) is loop:
            del self._loops[loop.name]

    async def stop(self) -> None:
        """Cancel every loop still running and wait for them to end."""
        await asyncio.gather(*(loop.stop() for loop in list(self._loops.values())))

    async def _supervise(self, loop: Supervised, body: LoopBody) -> None:
        backoff = self.first_backoff
        while True:
            started = self._clock.monotonic()
            try:
                await body()
                failure = "it returned"
                _log.error("background loop %s returned; it is started again", loop.name)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise  # stopped on purpose
                # A CancelledError nobody asked for (a bug in the loop) is a death like any.
                failure = "CancelledError"
                _log.error("background loop %s was cancelled from inside", loop.name)
            except Exception as exc:
                failure = describe(exc)
                _log.exception("background loop %s died", loop.name)
            lasted = self._clock.monotonic() - started
            if lasted >= self.max_backoff:
                backoff = self.first_backoff
            loop.reason = (
                f"background loop {loop.name} died ({failure}); restarting in {backoff:g}s"
            )
            await self._tell()
            await self._clock.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)
            loop.restarts += 1
            self.restarts += 1
            loop.reason = ""
            _log.warning("background loop %s started again (restart %d)", loop.name, loop.restarts)
            await self._tell()

    async def _tell(self) -> None:
        for listener in self._listeners:
            try:
                await listener()
            except Exception:
                _log.exception("a supervisor listener failed")


def describe(exc: BaseException) -> str:
    """``Type: message`` of what ended a loop; an exception group of one (a loop's task
    group) is described by the exception inside it."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
