"""Optional OpenTelemetry spans across start → poll → resume; a no-op without the ``otel`` extra.

OpenTelemetry is imported lazily, once: without ``pip install lro-server[otel]`` every
function here returns at once and costs a dictionary lookup. With it, spans go to whatever
tracer provider the process configured (``cli`` installs one when ``LRO_TRACING`` is set).

An operation outlives the RPC that started it, so its start span's ``traceparent`` is kept
in the operation's work description (``work["traceparent"]``); tracker polls and resumes
open their spans as children of it, and the whole life of an operation reads as one trace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from lro_server.core.logcontext import Trace, current_trace

#: Instrumentation scope of our spans.
SCOPE = "lro_server"

_api: Any = None  # the opentelemetry package namespace once imported; False if missing


def _otel() -> Any:
    global _api  # noqa: PLW0603  a lazily resolved optional import, not mutable state
    if _api is None:
        try:
            from opentelemetry import propagate, trace

            _api = (trace, propagate)
        except ImportError:
            _api = False
    return _api


def available() -> bool:
    """Whether the OpenTelemetry API is installed."""
    return bool(_otel())


@contextlib.contextmanager
def span(
    name: str,
    *,
    parent: str | Trace | None = None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Iterator[Any]:
    """A span named ``name`` (None without OpenTelemetry).

    Args:
        name: Span name, e.g. ``lro.poll``.
        parent: A ``traceparent`` header value or a Trace to continue; by default the span
            is a child of the current OpenTelemetry context, else of the bound log trace.
        attributes: Span attributes (never tokens or payloads).
    """
    api = _otel()
    if not api:
        yield None
        return
    trace, propagate = api
    if parent is None and not trace.get_current_span().get_span_context().is_valid:
        parent = current_trace()
    context = None
    if parent is not None:
        header = parent.traceparent() if isinstance(parent, Trace) else parent
        context = propagate.extract({"traceparent": header})
    tracer = trace.get_tracer(SCOPE)
    with tracer.start_as_current_span(
        name, context=context, attributes=dict(attributes or {})
    ) as s:
        yield s


def current_traceparent() -> str:
    """``traceparent`` of the current span, or of the bound log trace; "" without either."""
    api = _otel()
    if api:
        carrier: dict[str, str] = {}
        api[1].inject(carrier)
        if carrier.get("traceparent"):
            return carrier["traceparent"]
    trace = current_trace()
    return trace.traceparent() if trace is not None else ""
