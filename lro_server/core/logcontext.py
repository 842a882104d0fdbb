"""Per-call log context: the operation and trace a log line is about.

The fronts bind the trace of each RPC (from ``traceparent`` or ``x-cloud-trace-context``)
and, where the request names one, the operation; the service binds the name of an operation
it creates; the tracker binds both for each poll. The log formatter (``cli/logs.py``) reads
them, so every line about an operation carries its name and trace id without each call site
repeating them. They live in the current :class:`~lro_server.core.callscope.CallScope`
(the fronts fill in a call's scope themselves); asyncio copies the context into each task,
so concurrent calls never mix.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator, Mapping

from lro_server.core import callscope

#: W3C Trace Context header.
TRACEPARENT = "traceparent"
#: Google Cloud's legacy trace header: ``TRACE_ID/SPAN_ID;o=1`` (span id in decimal).
CLOUD_TRACE = "x-cloud-trace-context"

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d+))?(?:;o=([01]))?$")


@dataclasses.dataclass(frozen=True, slots=True)
class Trace:
    """The distributed trace a piece of work belongs to.

    Attributes:
        trace_id: 32 lower-case hex digits.
        span_id: 16 hex digits of the parent span ("" if unknown).
        sampled: Whether the caller samples this trace.
    """

    trace_id: str
    span_id: str = ""
    sampled: bool = False

    def traceparent(self) -> str:
        """The W3C ``traceparent`` header of this trace."""
        span = self.span_id or "0" * 15 + "1"
        return f"00-{self.trace_id}-{span}-{'01' if self.sampled else '00'}"


def parse_trace(headers: Mapping[str, str]) -> Trace | None:
    """The trace named by ``traceparent`` or else ``x-cloud-trace-context`` (keys lower-case)."""
    traceparent = headers.get(TRACEPARENT)
    cloud_trace = headers.get(CLOUD_TRACE)
    if traceparent is None and cloud_trace is None:
        return None  # most calls: no regular expression to run
    match = _TRACEPARENT.match((traceparent or "").strip().lower())
    if match and set(match.group(1)) != {"0"}:
        return Trace(match.group(1), match.group(2), int(match.group(3), 16) & 1 == 1)
    match = _CLOUD_TRACE.match((cloud_trace or "").strip())
    if match and set(match.group(1)) != {"0"}:
        span = f"{int(match.group(2)):016x}"[-16:] if match.group(2) else ""
        return Trace(match.group(1).lower(), span, match.group(3) == "1")
    return None


def current_operation() -> str:
    """Name of the operation the running code works on ("" if none)."""
    scope = callscope.current()
    return "" if scope is None else scope.operation


def current_trace() -> Trace | None:
    """Trace of the running call or poll, if any."""
    scope = callscope.current()
    return None if scope is None else scope.trace


def set_operation(name: str) -> None:
    """Bind ``name`` for the rest of the current task (e.g. once an operation is created)."""
    scope = callscope.changed()
    scope.operation = name
    callscope.enter(scope)


#: What :func:`bind` returns and :func:`unbind` takes back.
Bindings = callscope.Token


def bind(*, operation: str | None = None, trace: Trace | None = None) -> Bindings:
    """Bind an operation and/or a trace until :func:`unbind` (what is not given stays)."""
    scope = callscope.changed()
    if operation is not None:
        scope.operation = operation
    if trace is not None:
        scope.trace = trace
    return callscope.enter(scope)


def unbind(bindings: Bindings) -> None:
    """Restore what :func:`bind` replaced."""
    callscope.leave(bindings)


@contextlib.contextmanager
def bound(*, operation: str | None = None, trace: Trace | None = None) -> Iterator[None]:
    """Bind an operation and/or a trace for the block, restoring the previous values after."""
    bindings = bind(operation=operation, trace=trace)
    try:
        yield
    finally:
        unbind(bindings)
