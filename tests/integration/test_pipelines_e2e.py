"""Pipelines.* end to end: gRPC API → server → simulator, on a manual simulator clock."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from family_helpers import (
    SETTLE,
    assert_cancelled,
    assert_timed_out,
    calls_reach,
    future,
    manual_simulator,
    metadata_when,
    outcome,
    rest,
    seconds,
)
from google.rpc import error_details_pb2

from lro_server._proto.lro.databricks.v1 import pipelines_pb2, pipelines_pb2_grpc
from lro_server.testing.databricks_sim import SimulatorThread

API = "/api/2.0/pipelines"


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    yield from manual_simulator()


@pytest.fixture
def pipelines(channel):
    return pipelines_pb2_grpc.PipelinesStub(channel)


@pytest.fixture
def pipeline_id(sim) -> str:
    return str(rest(sim)("POST", API, body={"name": "sales"})["pipeline_id"])


def _update_future(op, operations):
    return future(op, operations, pipelines_pb2.PipelineUpdate, pipelines_pb2.PipelineMetadata)


def _stop_future(op, operations):
    return future(op, operations, pipelines_pb2.Pipeline, pipelines_pb2.PipelineMetadata)


def _running_update(sim, pipeline_id: str) -> None:
    sim.set_timeline("updates", "hold", pipeline_id=pipeline_id)
    rest(sim)("POST", f"{API}/{pipeline_id}/updates", body={})
    sim.advance(1)


def test_start_update_success(sim, pipelines, operations, pipeline_id):
    op = pipelines.StartUpdate(pipelines_pb2.StartUpdateRequest(pipeline_id=pipeline_id))
    fut = _update_future(op, operations)
    metadata_when(fut, lambda m: m.update_id != "", "the update id")
    sim.advance(SETTLE)
    update = fut.result(timeout=30)
    assert update.state == "COMPLETED" and update.pipeline_id == pipeline_id
    assert update.pipeline_url.endswith(f"/pipelines/{pipeline_id}/updates/{update.update_id}")


def test_start_update_failure_says_why(sim, pipelines, operations, pipeline_id):
    # The ERROR event's own text is generic ("Update 1a2b3c is FAILED."); the cause is in
    # its exceptions, which is what the message and the details carry.
    sim.set_timeline(
        "updates",
        [
            {"state": "RUNNING", "seconds": 0.2},
            {
                "state": "FAILED",
                "error_message": "Table or view not found: sales.orders_bronze",
                "error_class": "org.apache.spark.sql.AnalysisException",
            },
        ],
        pipeline_id=pipeline_id,
    )
    op = pipelines.StartUpdate(pipelines_pb2.StartUpdateRequest(pipeline_id=pipeline_id))
    fut = _update_future(op, operations)
    metadata_when(fut, lambda m: m.update_id != "", "the update id")
    sim.advance(SETTLE)
    op = outcome(fut)
    assert op.error.code == 2
    assert op.error.message == ("AnalysisException: Table or view not found: sales.orders_bronze")
    debug = error_details_pb2.DebugInfo()
    assert any(d.Unpack(debug) for d in op.error.details)
    assert list(debug.stack_entries) == [op.error.message]
    assert debug.detail == op.error.message
    events = rest(sim)("GET", f"{API}/{pipeline_id}/events")["events"]
    assert events[0]["message"].endswith("is FAILED.")


def test_second_concurrent_update_is_refused(sim, pipelines, pipeline_id):
    _running_update(sim, pipeline_id)
    with pytest.raises(grpc.RpcError) as caught:
        pipelines.StartUpdate(pipelines_pb2.StartUpdateRequest(pipeline_id=pipeline_id))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "has an active update" in caught.value.details()


def test_cancel_stops_the_pipeline(sim, pipelines, operations, pipeline_id):
    op = pipelines.StartUpdate(pipelines_pb2.StartUpdateRequest(pipeline_id=pipeline_id))
    fut = _update_future(op, operations)
    metadata_when(fut, lambda m: m.state != "", "the update")
    assert fut.cancel()
    calls_reach(sim, "/stop")
    sim.advance(SETTLE)
    assert_cancelled(outcome(fut))
    assert fut.metadata.state == "CANCELED"


def test_start_update_timeout(sim, pipelines, operations, pipeline_id):
    request = pipelines_pb2.StartUpdateRequest(pipeline_id=pipeline_id, timeout=seconds(1))
    assert_timed_out(outcome(_update_future(pipelines.StartUpdate(request), operations)))
    assert sim.calls(path_contains="/stop") >= 1


def test_stop_success(sim, pipelines, operations, pipeline_id):
    _running_update(sim, pipeline_id)
    op = pipelines.Stop(pipelines_pb2.StopPipelineRequest(pipeline_id=pipeline_id))
    fut = _stop_future(op, operations)
    metadata_when(fut, lambda m: m.state == "STOPPING", "the stop")
    sim.advance(SETTLE)
    pipeline = fut.result(timeout=30)
    assert pipeline.state == "IDLE" and pipeline.name == "sales"


def test_stop_failure_when_the_pipeline_fails(sim, pipelines, operations, pipeline_id):
    _running_update(sim, pipeline_id)
    op = pipelines.Stop(pipelines_pb2.StopPipelineRequest(pipeline_id=pipeline_id))
    fut = _stop_future(op, operations)
    metadata_when(fut, lambda m: m.state == "STOPPING", "the stop")
    update_id = rest(sim)("GET", f"{API}/{pipeline_id}/updates")["updates"][0]["update_id"]
    sim.finish("updates", update_id, "FAILED")
    op = outcome(fut)
    assert (op.error.code, op.error.message) == (9, "pipeline is FAILED")


def test_cancel_of_a_stop_leaves_it_going(sim, pipelines, operations, pipeline_id):
    _running_update(sim, pipeline_id)
    op = pipelines.Stop(pipelines_pb2.StopPipelineRequest(pipeline_id=pipeline_id))
    fut = _stop_future(op, operations)
    metadata_when(fut, lambda m: m.state == "STOPPING", "the stop")
    fut.cancel()
    sim.advance(SETTLE)
    assert fut.result(timeout=30).state == "IDLE"


def test_stop_timeout(sim, pipelines, operations, pipeline_id):
    _running_update(sim, pipeline_id)
    request = pipelines_pb2.StopPipelineRequest(pipeline_id=pipeline_id, timeout=seconds(1))
    assert_timed_out(outcome(_stop_future(pipelines.Stop(request), operations)))


def test_track_update_follows_an_update_started_elsewhere(sim, pipelines, operations, pipeline_id):
    sim.set_timeline("updates", "hold", pipeline_id=pipeline_id)
    update_id = rest(sim)("POST", f"{API}/{pipeline_id}/updates", body={})["update_id"]
    sim.advance(1)
    request = pipelines_pb2.TrackUpdateRequest(pipeline_id=pipeline_id, update_id=update_id)
    op = pipelines.TrackUpdate(request)
    assert pipelines.TrackUpdate(request).name == op.name  # tracked twice: one operation
    fut = _update_future(op, operations)
    metadata_when(fut, lambda m: m.state == "RUNNING", "the update running")
    assert fut.metadata.update_id == update_id
    updates = rest(sim)("GET", f"{API}/{pipeline_id}/updates")["updates"]
    sim.finish("updates", update_id, "COMPLETED")
    update = fut.result(timeout=30)
    assert update.update_id == update_id and update.state == "COMPLETED"
    assert len(rest(sim)("GET", f"{API}/{pipeline_id}/updates")["updates"]) == len(updates)


def test_track_update_of_an_unknown_update_is_refused(pipelines, pipeline_id):
    request = pipelines_pb2.TrackUpdateRequest(pipeline_id=pipeline_id, update_id="nope")
    with pytest.raises(grpc.RpcError) as caught:
        pipelines.TrackUpdate(request)
    assert caught.value.code() != grpc.StatusCode.INTERNAL
