"""The deadline of the RPC being served, for the outbound calls made on its behalf.

Both fronts :func:`enter` it around every handler. Code deeper down (the Databricks
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
from collections.abc import Callable, Iterator
from typing import Any

#: What a call's deadline is kept as: None (none), a monotonic instant, or gRPC's
#: ``time_remaining`` (asked only if something asks :func:`remaining`: most calls never do,
#: and asking costs a call into gRPC).
_End = float | Callable[[], float | None] | None
_Current = tuple[_End, "asyncio.Task[object] | None"]
_CURRENT: contextvars.ContextVar[_Current | None] = contextvars.ContextVar(
    "lro_call_deadline", default=None
)
#: What :func:`enter` returns and :func:`leave` takes back.
Token = contextvars.Token[_Current | None]


def _task() -> asyncio.Task[object] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop
        return None


def enter(
    timeout: float | Callable[[], float | None] | None, task: asyncio.Task[Any] | None
) -> Token:
    """Mark ``task`` (the current one, which the caller knows: asking asyncio costs more
    than the rest of this) as serving a call with ``timeout`` seconds left (None: none; or
    a function returning them, such as gRPC's ``context.time_remaining``) until
    :func:`leave`. The form the fronts use on every call: no object beyond the token.
    """
    if timeout is not None and not callable(timeout):
        timeout = time.monotonic() + max(0.0, timeout)
    return _CURRENT.set((timeout, task))


def leave(token: Token) -> None:
    """End what :func:`enter` began."""
    _CURRENT.reset(token)


@contextlib.contextmanager
def serving(timeout: float | Callable[[], float | None] | None) -> Iterator[None]:
    """:func:`enter` and :func:`leave` as a context manager (also off a running loop)."""
    token = enter(timeout, _task())
    try:
        yield
    finally:
        leave(token)


def remaining() -> float | None:
    """Seconds until the served call's deadline (``inf`` without one); None outside a call."""
    current = _CURRENT.get()
    if current is None or current[1] is not _task():
        return None
    end = current[0]
    if end is None:
        return math.inf
    if callable(end):
        left = end()
        return math.inf if left is None else max(0.0, left)
    return end - time.monotonic()
