"""Structured logs of real calls: operation and trace on every line, never tokens or payloads;
OpenTelemetry spans across start and polls when tracing is on."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from google.api_core import operation

from lro_server._proto.lro.databricks.v1 import jobs_pb2
from lro_server.cli.logs import configure_logging
from lro_server.core import tracing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
TOKEN = "dapi0123456789abcdef0123456789abcdef"
SECRET_PARAM = "hunter2-do-not-log"


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Route every log record of the process through the server's JSON setup at DEBUG."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    payload_levels = {n: logging.getLogger(n).level for n in ("databricks.sdk", "urllib3")}
    stream = io.StringIO()
    configure_logging("DEBUG", "json", trace_project="demo-project", stream=stream)
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)
    for name, old in payload_levels.items():
        logging.getLogger(name).setLevel(old)


def _run(jobs, operations, create_job, metadata):  # type: ignore[no-untyped-def]
    request = jobs_pb2.RunNowRequest(job_id=create_job(), notebook_params={"pw": SECRET_PARAM})
    op = jobs.RunNow(request, metadata=metadata)
    future = operation.from_gapic(op, operations, jobs_pb2.Run, metadata_type=jobs_pb2.RunMetadata)
    future.result(timeout=30)
    return op.name


def test_lines_carry_operation_and_trace_but_no_secrets(
    json_logs, server, jobs, operations, create_job
):
    metadata = (("authorization", f"Bearer {TOKEN}"), ("traceparent", TRACEPARENT))
    name = _run(jobs, operations, create_job, metadata)
    text = json_logs.getvalue()
    assert TOKEN not in text and SECRET_PARAM not in text
    entries = [json.loads(line) for line in text.splitlines()]
    about = [e for e in entries if name in e["message"]]
    assert len(about) >= 2, "expected the start and the end of the run to be logged"
    for entry in about:
        assert entry["operation"] == name
        assert entry["logging.googleapis.com/trace"] == f"projects/demo-project/traces/{TRACE_ID}"
        assert entry["severity"] in {"DEBUG", "INFO", "WARNING", "ERROR"}


def test_cloud_trace_header_is_understood(json_logs, server, jobs, operations, create_job):
    metadata = (("x-cloud-trace-context", f"{TRACE_ID.upper()}/1234;o=1"),)
    name = _run(jobs, operations, create_job, metadata)
    entries = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    started = [e for e in entries if name in e["message"] and "started" in e["message"]]
    assert started and started[0]["logging.googleapis.com/trace"].endswith(TRACE_ID)
    assert started[0]["logging.googleapis.com/spanId"] == f"{1234:016x}"
    assert started[0]["logging.googleapis.com/trace_sampled"] is True


def test_spans_join_start_and_polls_in_one_trace(server, jobs, operations, create_job):
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    try:
        name = _run(jobs, operations, create_job, (("traceparent", TRACEPARENT),))
    finally:
        tracing.disable()
        provider.shutdown()
    spans = exporter.get_finished_spans()
    start = [s for s in spans if s.name == "lro.databricks.v1.Jobs/RunNow"]
    polls = [s for s in spans if s.name in ("lro.poll", "lro.settle")]
    assert len(start) == 1 and polls
    assert {format(s.context.trace_id, "032x") for s in start + polls} == {TRACE_ID}
    assert all(s.attributes["lro.operation"] == name for s in polls)


def test_tracing_is_off_by_default():
    assert not tracing.enabled()
    with tracing.span("nothing") as span:
        assert span is None


def test_chain_resumes_and_children_join_the_start_trace(server, channel, operations, create_job):
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    from chain_helpers import chain_request, future, run_now
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from lro_server._proto.lro.databricks.v1 import chains_pb2_grpc

    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    chains = chains_pb2_grpc.ChainsStub(channel)
    job_id = create_job("traced")
    tracing.enable(provider)
    try:
        request = chain_request(run_now("one", job_id), run_now("two", job_id))
        op = chains.RunChain(request, metadata=(("traceparent", TRACEPARENT),))
        future(op, operations).result(timeout=30)
    finally:
        tracing.disable()
        provider.shutdown()
    spans = exporter.get_finished_spans()
    resumes = [s for s in spans if s.name == "lro.resume"]
    polls = [s for s in spans if s.name in ("lro.poll", "lro.settle")]
    assert len(resumes) >= 2 and polls
    assert {format(s.context.trace_id, "032x") for s in resumes + polls} == {TRACE_ID}
    assert {s.attributes["lro.operation"] for s in resumes} == {op.name}
