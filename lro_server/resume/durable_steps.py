"""Steps of a durable method: one attempt of the user's function, and what a failed one leaves.

An attempt calls the function (a sync one on a worker thread, an async one on the loop)
with ``durable.step_key()`` set; its result must be JSON. While it runs longer than
:data:`HEARTBEAT_SECONDS`, the operation is kept alive (its record rewritten), so the
stalled-operation sweep of other replicas never starts it a second time; a quick step
costs one timer and nothing else. A failed attempt becomes a STEP_FAILED event: final
when the step's Retry is spent, else with the time of the next attempt.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from lro_server.core.clock import Clock
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
    function: Callable[..., Any],
    args: tuple[Any, ...],
    *,
    key: str,
    clock: Clock,
    heartbeat: Heartbeat,
) -> Any:
    """One attempt: the function's result as JSON; raises what the function raised (or
    why its result is not JSON)."""
    token = STEP_KEY.set(key)
    beat = _Heartbeat(clock, heartbeat, HEARTBEAT_SECONDS)
    try:
        value = await _call(function, args)
        return json.loads(json.dumps(value))
    finally:
        beat.stop()
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


class _Heartbeat:
    """Heartbeats of a step that runs long: nothing at all for a quick one (one timer)."""

    def __init__(self, clock: Clock, heartbeat: Heartbeat, seconds: float) -> None:
        self._heartbeat = heartbeat
        self._task: asyncio.Task[None] | None = None
        self._timer = clock.call_later(seconds, self._start)

    def _start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._heartbeat())

    def stop(self) -> None:
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()


async def _call(function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    if inspect.iscoroutinefunction(function):
        return await function(*args)
    value = await asyncio.to_thread(function, *args)
    if inspect.isawaitable(value):
        return await value
    return value
