"""Optional OpenTelemetry spans across start → poll → resume; a no-op without the ``otel`` extra.

Tracing is off until :func:`enable` is called (``cli`` does when ``LRO_TRACING`` is set, after
installing a tracer provider); until then every function here returns at once, so a server
pays nothing for spans nobody collects, even where OpenTelemetry happens to be installed.
OpenTelemetry is imported only by :func:`enable`; without it (``pip install lro-server[otel]``)
enabling raises ImportError and nothing else changes.

An operation outlives the RPC that started it, so its start span's ``traceparent`` is kept
in the operation record (its ``traceparent`` field); tracker polls and resumes
open their spans as children of it, and the whole life of an operation reads as one trace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from lro_server.core.logcontext import Trace, bound, current_trace, parse_trace

#: Instrumentation scope of our spans.
SCOPE = "lro_server"

#: (opentelemetry.trace, opentelemetry.propagate, tracer) once enabled, else None.
#: Process-wide like OpenTelemetry's own global tracer provider, which it mirrors.
_api: tuple[Any, Any, Any] | None = None
#: Whether spans are emitted: what :func:`enabled` answers, read directly by the per-call
#: paths of the fronts (a function call there costs more than the check).
active = False


def enable(tracer_provider: Any = None) -> None:
    """Emit spans from now on (raises ImportError without the OpenTelemetry API).

    Args:
        tracer_provider: Where spans go; None: OpenTelemetry's global provider.
    """
    global _api, active  # noqa: PLW0603  mirrors OpenTelemetry's process-wide provider
    from opentelemetry import propagate, trace

    _api = (trace, propagate, trace.get_tracer(SCOPE, tracer_provider=tracer_provider))
    active = True


def disable() -> None:
    """Stop emitting spans."""
    global _api, active  # noqa: PLW0603
    _api = None
    active = False


def enabled() -> bool:
    """Whether spans are emitted."""
    return active


def _otel() -> tuple[Any, Any, Any] | None:
    return _api


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
    trace, propagate, tracer = api
    if parent is None and not trace.get_current_span().get_span_context().is_valid:
        parent = current_trace()
    context = None
    if parent is not None:
        header = parent.traceparent() if isinstance(parent, Trace) else parent
        context = propagate.extract({"traceparent": header})
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


@contextlib.contextmanager
def operation_scope(name: str, parent: str, span_name: str) -> Iterator[None]:
    """Work on operation ``name`` outside its starting call (a poll, a resume).

    Log lines name the operation and carry the trace of the call that started it
    (``parent``, the record's ``traceparent``); the span, if tracing is on, joins that trace.
    """
    with (
        bound(operation=name, trace=parse_trace({"traceparent": parent})),
        span(span_name, parent=parent or None, attributes={"lro.operation": name}),
    ):
        yield
