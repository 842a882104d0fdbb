"""LRO_TRACING=otlp end to end: `lro-server serve` exports its spans over OTLP/gRPC.

The collector is a loopback stand-in serving OpenTelemetry's own TraceService (the
generated code of opentelemetry-proto), so what arrives is what a real collector would get.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

BANNER = re.compile(r"gRPC on [\d.]+:(\d+), HTTP/JSON on http://[\d.]+:(\d+)")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps every export request it is sent."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self._lock = threading.Lock()

    def Export(self, request: Any, context: Any) -> Any:
        with self._lock:
            self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self) -> list[tuple[dict[str, str], Any]]:
        """(resource attributes, span) of everything received."""
        with self._lock:
            requests = list(self.requests)
        found = []
        for request in requests:
            for resource_spans in request.resource_spans:
                resource = _attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    found.extend((resource, span) for span in scope_spans.spans)
        return found


def _attributes(values: Any) -> dict[str, str]:
    return {a.key: a.value.string_value for a in values}


@pytest.fixture
def collector() -> Iterator[tuple[Collector, int]]:
    servicer = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, port
    server.stop(0)


def test_served_calls_reach_the_collector_in_the_callers_trace(tmp_path: Path, collector):
    servicer, port = collector
    env = {
        **os.environ,
        "LRO_HOST": "127.0.0.1",
        "LRO_TRACING": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
    }
    command = [sys.executable, "-m", "lro_server.cli.server", "serve", "--grpc-port", "0",
               "--http-port", "0", "--store", f"sqlite:///{tmp_path}/ops.db"]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = BANNER.search(line)
        assert match, f"unexpected banner: {line!r}"
        name = "operations/00000000-0000-4000-8000-000000000000"
        request = urllib.request.Request(
            f"http://127.0.0.1:{match.group(2)}/v1/{name}",
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        assert caught.value.code == 404
        caught.value.close()
        process.send_signal(signal.SIGTERM)  # shutting down flushes the batch of spans
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        _, errors = process.communicate(timeout=10)

    spans = [
        (resource, span)
        for resource, span in servicer.spans()
        if span.name == "google.longrunning.Operations/GetOperation"
    ]
    assert len(spans) == 1, errors[-2000:]
    resource, span = spans[0]
    assert resource["service.name"] == "lro-server"
    assert span.trace_id.hex() == TRACE_ID  # the caller's trace, continued
    assert span.parent_span_id.hex() == PARENT_ID
    attributes = _attributes(span.attributes)
    assert attributes["rpc.grpc.status_code"] == "NOT_FOUND"
    assert attributes["lro.front"] == "http"
