"""The deadline of the RPC being served, for the outbound calls made on its behalf.

Both fronts open :func:`serving` around every handler. Code deeper down (the Databricks
client) asks :func:`remaining` how long the caller still waits, so that a start against a
slow or unreachable dependency answers in time instead of holding the RPC. Only the task
serving the call sees its deadline: work it hands to other tasks (a waiter, a tracker poll)
keeps its own budgets, however long the call that spawned it lived.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import time
from collections.abc import Callable
from types import TracebackType


class _Deadline:
    """A call's deadline in monotonic seconds, resolved at its first use."""

    __slots__ = ("_at", "_timeout")

    def __init__(self, timeout: float | Callable[[], float | None] | None) -> None:
        self._timeout = timeout
        self._at: float | None = None

    def at(self) -> float:
        if self._at is None:
            timeout = self._timeout() if callable(self._timeout) else self._timeout
            self._at = math.inf if timeout is None else time.monotonic() + max(0.0, timeout)
        return self._at


_Current = tuple[_Deadline, "asyncio.Task[object] | None"]
_CURRENT: contextvars.ContextVar[_Current | None] = contextvars.ContextVar(
    "lro_call_deadline", default=None
)


def _task() -> asyncio.Task[object] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop
        return None


class serving:  # noqa: N801  used as a function: ``with serving(timeout):``
    """Mark the current task as serving a call with ``timeout`` seconds left (None: none).

    ``timeout`` may also be a function returning it (gRPC's ``context.time_remaining``),
    asked only if something asks :func:`remaining`: most calls never do, and asking costs
    a call into gRPC on every RPC.

    A plain class rather than a generator-based context manager: it wraps every RPC.
    """

    __slots__ = ("_deadline", "_token")

    def __init__(self, timeout: float | Callable[[], float | None] | None) -> None:
        self._deadline = _Deadline(timeout)
        self._token: contextvars.Token[_Current | None] | None = None

    def __enter__(self) -> None:
        self._token = _CURRENT.set((self._deadline, _task()))

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _CURRENT.reset(self._token)


def remaining() -> float | None:
    """Seconds until the served call's deadline (``inf`` without one); None outside a call."""
    current = _CURRENT.get()
    if current is None or current[1] is not _task():
        return None
    return current[0].at() - time.monotonic()
