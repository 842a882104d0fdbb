"""Installs an OpenTelemetry tracer provider when ``LRO_TRACING`` asks for one.

Only this module imports the OpenTelemetry SDK, and only when tracing is on: the server runs
without the ``otel`` extra. Exporter settings (endpoint, headers) are OpenTelemetry's own
``OTEL_EXPORTER_OTLP_*`` variables, read by its exporter.
"""

from __future__ import annotations

from collections.abc import Callable

from lro_server.core import tracing
from lro_server.core.errors import FailedPrecondition


def install_tracing(mode: str, service_name: str = "lro-server") -> Callable[[], None]:
    """Install a global tracer provider exporting to ``mode`` (off, otlp, console).

    Returns a function that flushes and shuts the provider down.
    """
    if mode == "off":
        return lambda: None
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SpanExporter,
        )
    except ImportError as exc:
        raise FailedPrecondition(
            f"LRO_TRACING={mode} needs OpenTelemetry: pip install 'lro-server[otel]'",
            reason="OTEL_NOT_INSTALLED",
        ) from exc
    exporter: SpanExporter
    if mode == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise FailedPrecondition(
                "LRO_TRACING=otlp needs the OTLP exporter: pip install 'lro-server[otel]'",
                reason="OTEL_NOT_INSTALLED",
            ) from exc
        exporter = OTLPSpanExporter()
    else:
        exporter = ConsoleSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    tracing.enable()

    def shutdown() -> None:
        tracing.disable()
        provider.shutdown()

    return shutdown
