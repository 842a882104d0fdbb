"""Trace headers → Trace, and the metric label helpers."""

from __future__ import annotations

import pytest

from lro_server.core.logcontext import Trace, parse_trace
from lro_server.core.metrics import ActiveOperations, endpoint_label

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    "headers, expected",
    [
        (
            {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"},
            Trace(TRACE, "00f067aa0ba902b7", True),
        ),
        ({"traceparent": f"00-{TRACE}-00f067aa0ba902b7-00"}, Trace(TRACE, "00f067aa0ba902b7")),
        ({"x-cloud-trace-context": f"{TRACE.upper()}/1;o=1"}, Trace(TRACE, "0" * 15 + "1", True)),
        ({"x-cloud-trace-context": TRACE}, Trace(TRACE)),
        (
            {"traceparent": "garbage", "x-cloud-trace-context": f"{TRACE}/7;o=0"},
            Trace(TRACE, "0" * 15 + "7"),
        ),
        ({"traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01"}, None),
        ({"x-cloud-trace-context": "not-a-trace"}, None),
        ({}, None),
    ],
)
def test_parse_trace(headers: dict[str, str], expected: Trace | None):
    assert parse_trace(headers) == expected


def test_traceparent_round_trips():
    trace = Trace(TRACE, "00f067aa0ba902b7", True)
    assert parse_trace({"traceparent": trace.traceparent()}) == trace


@pytest.mark.parametrize(
    "path, label",
    [
        ("/api/2.2/jobs/run-now", "/api/2.2/jobs/run-now"),
        ("/api/2.2/jobs/runs/get?run_id=5", "/api/2.2/jobs/runs/get"),
        (
            "/api/2.0/pipelines/0a1b2c3d-4e5f-6789-abcd-ef0123456789/updates",
            "/api/2.0/pipelines/{id}/updates",
        ),
        ("/api/2.0/sql/warehouses/1234abcd5678ef90/start", "/api/2.0/sql/warehouses/{id}/start"),
        ("/api/2.0/clusters/123", "/api/2.0/clusters/{id}"),
    ],
)
def test_endpoint_labels_are_bounded(path: str, label: str):
    assert endpoint_label(path) == label


def test_active_operations_claim_replaces_and_done_removes():
    from google.longrunning import operations_pb2

    from lro_server.core.record import OperationRecord

    def record(name: str, state: str, done: bool = False) -> OperationRecord:
        op = operations_pb2.Operation(name=name, done=done)
        return OperationRecord(operation=op, state=state, family="jobs", version=2)

    active = ActiveOperations()
    active.changed("a", record("a", "RUNNING"))
    active.changed("b", record("b", ""))
    assert active.counts() == {("jobs", "RUNNING"): 1, ("jobs", "STARTING"): 1}
    active.changed("a", record("a", "TERMINATED", done=True))
    active.changed("b", None)
    assert active.counts() == {}
    active.claimed([record("c", "PENDING"), record("d", "PENDING")])
    assert active.counts() == {("jobs", "PENDING"): 2}
