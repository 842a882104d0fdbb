"""What both fronts do around every call: log context, a span, and the RPC metrics.

The gRPC front and the HTTP front call :meth:`RpcTelemetry.call` with the same method path,
so a method's counters and latency are comparable whichever front served it (label
``front``), and every log line inside the call carries its trace id and operation name.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from lro_server.core import tracing
from lro_server.core.errors import LroError
from lro_server.core.logcontext import Bindings, Trace, bind, parse_trace, unbind
from lro_server.core.metrics import Metrics


class CallOutcome:
    """Set by the front when it turns an exception into a status (default: OK)."""

    __slots__ = ("code",)

    def __init__(self) -> None:
        self.code = "OK"

    def failed(self, error: BaseException) -> None:
        """Record the canonical code of ``error`` (INTERNAL for anything not an LroError)."""
        if isinstance(error, LroError):
            self.code = error.code.name
        elif isinstance(error, asyncio.CancelledError):
            self.code = "CANCELLED"  # the client went away or the server is stopping
        else:
            self.code = "INTERNAL"


class RpcTelemetry:
    """Per-server telemetry of RPCs.

    Args:
        metrics: Where RPC counters and histograms go.
    """

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics or Metrics()

    def call(
        self, front: str, path: str, metadata: Mapping[str, str], operation: str = ""
    ) -> CallScope:
        """Observe one call of ``path`` (``/service/Method``) from ``front``.

        Use as ``with telemetry.call(...) as outcome:``.

        Args:
            front: ``grpc`` or ``http``.
            path: Full method path.
            metadata: Request metadata / headers with lower-case keys (for the trace).
            operation: The operation the request names, if any (e.g. GetOperation's name).
        """
        return CallScope(self.metrics, front, path.lstrip("/"), parse_trace(metadata), operation)


class CallScope:
    """The context manager of one call: log context, span, and metrics once it ends.

    A plain class rather than a generator-based context manager: it runs on every RPC of
    both fronts, and this shape costs a fraction of ``contextlib.contextmanager``'s.
    """

    __slots__ = ("_bindings", "_metrics", "_scope", "_span", "_started", "front", "method",
                 "operation", "outcome", "trace")  # fmt: skip

    def __init__(
        self, metrics: Metrics, front: str, method: str, trace: Trace | None, operation: str
    ) -> None:
        self._metrics = metrics
        self.front = front
        self.method = method
        self.trace = trace
        self.operation = operation
        self.outcome = CallOutcome()
        self._scope: contextlib.AbstractContextManager[Any] | None = None
        self._span: Any = None
        self._bindings: Bindings = (None, None)
        self._started = 0.0

    def __enter__(self) -> CallOutcome:
        self._bindings = bind(operation=self.operation, trace=self.trace)
        if tracing.enabled():  # else no span object, generator or attributes per call
            self._scope = tracing.span(
                self.method,
                parent=self.trace,
                attributes={"rpc.method": self.method, "lro.front": self.front},
            )
            self._span = self._scope.__enter__()
        self._started = time.perf_counter()
        return self.outcome

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        outcome = self.outcome
        if error is not None and outcome.code == "OK":  # the front may have recorded it
            outcome.failed(error)
        try:
            if self._span is not None:
                self._span.set_attribute("rpc.grpc.status_code", outcome.code)
            self._metrics.observe_rpc(
                self.front, self.method, outcome.code, time.perf_counter() - self._started
            )
        finally:
            try:
                if self._scope is not None:
                    self._scope.__exit__(kind, error, traceback)
            finally:
                unbind(self._bindings)
