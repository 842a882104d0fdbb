"""The deadline of the RPC being served, for the outbound calls made on its behalf.

Both fronts put it in the scope of every call (``serving``, ``deadline`` and ``task`` of
:class:`~lro_server.core.callscope.CallScope`). Code deeper down (the Databricks client)
asks :func:`remaining` how long the caller still waits, so that a start against a slow or
unreachable dependency answers in time instead of holding the RPC. Only the task serving
the call sees its deadline: work it hands to other tasks (a waiter, a tracker poll) keeps
its own budgets, however long the call that spawned it lived.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Iterator

from lro_server.core import callscope


def _task() -> asyncio.Task[object] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop
        return None


@contextlib.contextmanager
def serving(timeout: float | Callable[[], float | None] | None) -> Iterator[None]:
    """Serve a call with ``timeout`` seconds left (None: none; or a function returning
    them, such as gRPC's ``context.time_remaining``) in the current task, for the block
    (also off a running loop). The fronts set the scope's fields themselves instead."""
    scope = callscope.changed()
    scope.deadline = (
        time.monotonic() + max(0.0, timeout)
        if timeout is not None and not callable(timeout)
        else timeout
    )
    scope.serving, scope.task = True, _task()
    token = callscope.enter(scope)
    try:
        yield
    finally:
        callscope.leave(token)


def remaining() -> float | None:
    """Seconds until the served call's deadline (``inf`` without one); None outside a call."""
    scope = callscope.current()
    if scope is None or not scope.serving or scope.task is not _task():
        return None
    end = scope.deadline
    if end is None:
        return math.inf
    if callable(end):
        left = end()
        return math.inf if left is None else max(0.0, left)
    return end - time.monotonic()
