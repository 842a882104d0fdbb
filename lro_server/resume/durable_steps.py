"""Steps of a durable method: one attempt of the user's function, and what a failed one leaves.

An attempt calls the function (a sync one on a worker thread, an async one on the loop)
with ``durable.step_key()`` set; its result must be JSON. While it runs longer than
:data:`HEARTBEAT_SECONDS`, the operation is kept alive (its record rewritten), so the
stalled-operation sweep of other replicas never starts it a second time. One
:class:`Watch` per activation does that with one timer, re-armed only when it fires: a
quick step costs a clock reading, not a timer of its own. A failed attempt becomes a
STEP_FAILED event: final when the step's Retry is spent, else with the time of the next
attempt.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from lro_server.core.clock import Clock, Timer
from lro_server.core.errors import Code
from lro_server.durable.context import STEP_KEY, Step
from lro_server.durable.retry import Retry
from lro_server.resume import durable_journal as journal

_log = logging.getLogger(__name__)

#: A step running longer than this makes the operation write a heartbeat this often, so
#: the stalled-operation sweep of other replicas never starts it a second time.
HEARTBEAT_SECONDS = 10.0

#: Keeps the operation alive while a step runs (forever; cancelled when the step ends).
Heartbeat = Callable[[], Coroutine[Any, Any, None]]


async def run(
    function: Callable[..., Any], args: tuple[Any, ...], *, key: str, watch: Watch
) -> Any:
    """One attempt: the function's result as JSON; raises what the function raised (or
    why its result is not JSON, or too large for the journal)."""
    token = STEP_KEY.set(key)
    watch.started()
    try:
        value = await _call(function, args)
        encoded = json.dumps(value)
        size = journal.oversize(encoded)
        if size:
            raise ValueError(
                f"the step's result is {size:,} bytes of JSON, over the limit of "
                f"{journal.MAX_OUTCOME_BYTES:,}: keep large data elsewhere and return its name"
            )
        return json.loads(encoded)
    finally:
        watch.ended()
        STEP_KEY.reset(token)


def failed(
    parent: str, step: Step, attempt: int, retry: Retry | None, exc: Exception, *, now_us: int
) -> dict[str, Any]:
    """The STEP_FAILED event of attempt ``attempt`` of ``step``, failed with ``exc``."""
    message = f"{type(exc).__name__}: {exc}"[:2000]
    final = retry is None or attempt >= retry.max_attempts
    _log.warning(
        "%s: step %r (position %d) failed, attempt %d%s",
        parent,
        step.name,
        step.position,
        attempt,
        "" if final else ", will retry",
        exc_info=exc,
    )
    retry_at = 0 if final or retry is None else now_us + round(retry.backoff(attempt) * 1_000_000)
    return {
        "kind": journal.STEP_FAILED,
        "pos": step.position,
        "name": step.name,
        "error": journal.error_json(Code.UNKNOWN, message),
        "attempt": attempt,
        "final": final,
        "retry_at_us": retry_at,
    }


class Watch:
    """Heartbeats of the steps of one activation that run long (see the module docstring).

    Args:
        clock: Time of the timer.
        heartbeat: Keeps the operation alive; started once a step has run ``seconds``,
            cancelled when it ends.
        seconds: How long a step runs before the heartbeat starts.
    """

    def __init__(
        self, clock: Clock, heartbeat: Heartbeat, seconds: float = HEARTBEAT_SECONDS
    ) -> None:
        self._clock = clock
        self._heartbeat = heartbeat
        self._seconds = seconds
        #: Monotonic time the running step began (None: no step runs).
        self._since: float | None = None
        self._timer: Timer | None = None
        self._task: asyncio.Task[None] | None = None

    def started(self) -> None:
        """A step begins."""
        self._since = self._clock.monotonic()
        if self._timer is None:
            self._timer = self._clock.call_later(self._seconds, self._due)

    def ended(self) -> None:
        """The step ended: its heartbeat, if any, stops."""
        self._since = None
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def close(self) -> None:
        """The activation ended: nothing more to watch."""
        self.ended()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _due(self) -> None:
        self._timer = None
        if self._since is None:
            return  # between steps: the next one arms the timer again
        left = self._since + self._seconds - self._clock.monotonic()
        if left > 0:  # a later step than the one that armed it: wait for the rest
            self._timer = self._clock.call_later(left, self._due)
        elif self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._heartbeat())


async def _call(function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    if inspect.iscoroutinefunction(function):
        return await function(*args)
    value = await asyncio.to_thread(function, *args)
    if inspect.isawaitable(value):
        return await value
    return value
