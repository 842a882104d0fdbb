"""What both fronts do around every call: log context, a span, and the RPC metrics.

The gRPC front and the HTTP front call :meth:`RpcTelemetry.call` with the same method path,
so a method's counters and latency are comparable whichever front served it (label
``front``), and every log line inside the call carries its trace id and operation name.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Mapping

from lro_server.core import tracing
from lro_server.core.errors import LroError
from lro_server.core.logcontext import bound, parse_trace
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

    @contextlib.contextmanager
    def call(
        self, front: str, path: str, metadata: Mapping[str, str], operation: str = ""
    ) -> Iterator[CallOutcome]:
        """Observe one call of ``path`` (``/service/Method``) from ``front``.

        Args:
            front: ``grpc`` or ``http``.
            path: Full method path.
            metadata: Request metadata / headers with lower-case keys (for the trace).
            operation: The operation the request names, if any (e.g. GetOperation's name).
        """
        outcome = CallOutcome()
        method = path.lstrip("/")
        started = time.perf_counter()
        trace = parse_trace(metadata)
        with (
            bound(operation=operation, trace=trace),
            tracing.span(
                method, parent=trace, attributes={"rpc.method": method, "lro.front": front}
            ) as span,
        ):
            try:
                yield outcome
            except BaseException as exc:
                if outcome.code == "OK":  # the front may have recorded the real code already
                    outcome.failed(exc)
                raise
            finally:
                if span is not None:
                    span.set_attribute("rpc.grpc.status_code", outcome.code)
                self.metrics.observe_rpc(front, method, outcome.code, time.perf_counter() - started)
