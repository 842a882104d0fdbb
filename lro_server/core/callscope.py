"""The scope the running code works in: the call it serves, the operation and trace its log
lines name, that call's deadline; one object in one context variable.

Both fronts enter a scope for every call, the tracker and the resume engine one for every
poll or resume of an operation. :mod:`lro_server.core.logcontext` reads the operation and
the trace from it, :mod:`lro_server.core.deadline` the deadline. One variable, set once per
call: each context-variable set and reset shows in the server's CPU per call
(docs/performance.md), and a call used to make three of each.

asyncio copies the context into each task, so concurrent calls never see each other's
scope, and work a call hands to another task (a waiter, a background start) keeps the
operation and trace in its log lines but not the deadline (see ``task``).

A scope is filled in by whoever entered it before the code it scopes runs, and not changed
after: a change (``set_operation``) enters a changed copy, so a task that was handed the
scope before keeps what it saw.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # logcontext builds on this module
    from lro_server.core.logcontext import Trace

#: A call's deadline: None (none), a monotonic instant, or a function returning the seconds
#: left (gRPC's ``time_remaining``, asked only if something asks: most calls never do).
Deadline = float | Callable[[], float | None] | None


class CallScope:
    """What the running code works on.

    Attributes:
        operation: Name of the operation it works on ("" if none).
        trace: Trace of the call or poll, if any.
        serving: Whether the code serves a call (False for a poll or a resume).
        deadline: The served call's deadline (see ``Deadline``).
        task: The task serving the call (None off a running loop): only that task sees
            the deadline.
    """

    __slots__ = ("deadline", "operation", "serving", "task", "trace")

    def __init__(
        self,
        operation: str = "",
        trace: Trace | None = None,
        *,
        serving: bool = False,
        deadline: Deadline = None,
        task: asyncio.Task[Any] | None = None,
    ) -> None:
        self.operation = operation
        self.trace = trace
        self.serving = serving
        self.deadline = deadline
        self.task = task

    def copy(self) -> CallScope:
        """A scope like this one, to change and enter instead of changing this one."""
        return CallScope(
            self.operation,
            self.trace,
            serving=self.serving,
            deadline=self.deadline,
            task=self.task,
        )


_CURRENT: contextvars.ContextVar[CallScope | None] = contextvars.ContextVar(
    "lro_call_scope", default=None
)
#: The scope of the running code, None outside any. This and the two below are the
#: variable's own methods, not functions around them: every call of the server uses them.
current: Callable[[], CallScope | None] = _CURRENT.get
#: What :func:`enter` returns and :func:`leave` takes back.
Token = contextvars.Token[CallScope | None]
#: Make a scope the current one until :func:`leave` (or until the task ends).
enter: Callable[[CallScope], Token] = _CURRENT.set
#: Restore the scope :func:`enter` replaced (given what it returned).
leave: Callable[[Token], None] = _CURRENT.reset


def changed() -> CallScope:
    """A copy of the current scope (an empty one outside any), to change and enter."""
    scope = _CURRENT.get()
    return CallScope() if scope is None else scope.copy()
