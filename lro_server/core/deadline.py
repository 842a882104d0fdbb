"""The deadline of the RPC being served, for the outbound calls made on its behalf.

Both fronts open :func:`serving` around every handler. Code deeper down (the Databricks
client) asks :func:`remaining` how long the caller still waits, so that a start against a
slow or unreachable dependency answers in time instead of holding the RPC. Only the task
serving the call sees its deadline: work it hands to other tasks (a waiter, a tracker poll)
keeps its own budgets, however long the call that spawned it lived.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import time
from collections.abc import Iterator

_CURRENT: contextvars.ContextVar[tuple[float, asyncio.Task[object] | None] | None] = (
    contextvars.ContextVar("lro_call_deadline", default=None)
)


def _task() -> asyncio.Task[object] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop
        return None


@contextlib.contextmanager
def serving(timeout: float | None) -> Iterator[None]:
    """Mark the current task as serving a call with ``timeout`` seconds left (None: none)."""
    deadline = math.inf if timeout is None else time.monotonic() + max(0.0, timeout)
    token = _CURRENT.set((deadline, _task()))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def remaining() -> float | None:
    """Seconds until the served call's deadline (``inf`` without one); None outside a call."""
    current = _CURRENT.get()
    if current is None or current[1] is not _task():
        return None
    return current[0] - time.monotonic()
