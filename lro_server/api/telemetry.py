"""What both fronts do around every call: log context, a span, and the RPC metrics.

The gRPC front and the HTTP front observe each call through a :class:`MethodProbe` of its method,
so a method's counters and latency are comparable whichever front served it (label
``front``), and every log line inside the call carries its trace id and operation name.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from time import perf_counter
from typing import Any

from lro_server.core import tracing
from lro_server.core.callscope import CallScope
from lro_server.core.errors import LroError
from lro_server.core.logcontext import CLOUD_TRACE, TRACEPARENT, parse_trace
from lro_server.core.metrics import Metrics

#: What :meth:`MethodProbe.open` returns and :meth:`MethodProbe.close` takes back: the span's
#: context manager and the span (None while tracing is off), and the start.
Opened = tuple["contextlib.AbstractContextManager[Any] | None", Any, float]


def code_of(error: BaseException) -> str:
    """The canonical code a call ends with when ``error`` escapes it (INTERNAL for anything
    that is not an LroError)."""
    if isinstance(error, LroError):
        return error.code.name
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED"  # the client went away or the server is stopping
    return "INTERNAL"


class RpcTelemetry:
    """Per-server telemetry of RPCs.

    Args:
        metrics: Where RPC counters and histograms go.
    """

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics or Metrics()

    def probe(self, front: str, path: str) -> MethodProbe:
        """The telemetry of ``path`` (``/service/Method``) on ``front`` (``grpc``, ``http``);
        get it once per method and use it for every call."""
        return MethodProbe(self.metrics, front, path)


class MethodProbe:
    """What a front does around every call of one method: log context, span, metrics.

    Built once per method (the metric's labels resolved then), so a call costs two method
    calls and a tuple: this runs on every RPC of both fronts, where each object and call
    shows in the server's CPU per call (docs/performance.md). The front enters the call's
    scope (:mod:`lro_server.core.callscope`) with the operation its request names; use as::

        opened = probe.open(scope, metadata)
        code = "OK"
        try:
            ...
        except Exception as exc:
            code = code_of(exc)
            ...
        finally:
            probe.close(opened, code)

    Args:
        metrics: Where the call is counted.
        front: ``grpc`` or ``http``.
        path: Full method path.
    """

    __slots__ = ("_latency", "_ok", "_requests", "front", "method")

    def __init__(self, metrics: Metrics, front: str, path: str) -> None:
        self.front = front
        self.method = path.lstrip("/")
        self._requests = metrics.rpc_requests
        self._ok = metrics.rpc_requests.slot(front, self.method, "OK")
        self._latency = metrics.rpc_duration.slot(front, self.method)

    def open(self, scope: CallScope, metadata: Mapping[str, str]) -> Opened:
        """A call begins: put its trace (from ``metadata``, lower-case keys) in ``scope``
        for log lines, and open its span if tracing is on."""
        if TRACEPARENT in metadata or CLOUD_TRACE in metadata:  # most calls: neither
            scope.trace = parse_trace(metadata)
        if not tracing.active:  # else no span object, generator or attributes per call
            return None, None, perf_counter()
        span = tracing.span(
            self.method,
            parent=scope.trace,
            attributes={"rpc.method": self.method, "lro.front": self.front},
        )
        return span, span.__enter__(), perf_counter()

    def close(self, opened: Opened, code: str, error: BaseException | None = None) -> None:
        """The call ended with ``code`` (``error``: what escaped it, for the span)."""
        manager, span, started = opened
        self._latency.add(perf_counter() - started)
        if code == "OK":
            self._ok.n += 1
        else:
            self._requests.slot(self.front, self.method, code).n += 1
        if manager is not None:
            if span is not None:
                span.set_attribute("rpc.grpc.status_code", code)
            manager.__exit__(type(error) if error else None, error, None)
