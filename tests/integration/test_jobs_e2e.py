"""Jobs.RunNow / Submit end to end: google-api-core's client against a real server."""

from __future__ import annotations

import pytest
from google.api_core import exceptions, operation

from lro_server._proto.lro.databricks.v1 import jobs_pb2


def _future(op, operations):  # type: ignore[no-untyped-def]
    return operation.from_gapic(op, operations, jobs_pb2.Run, metadata_type=jobs_pb2.RunMetadata)


def test_run_now_success_returns_typed_response(sim, jobs, operations, create_job):
    job_id = create_job("ok")
    op = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id, notebook_params={"a": "1"}))
    assert op.name.startswith("operations/") and not op.done
    run = _future(op, operations).result(timeout=30)
    assert isinstance(run, jobs_pb2.Run)
    assert run.job_id == job_id and run.run_id > 0
    assert run.result_state == "SUCCESS" and run.life_cycle_state == "TERMINATED"
    assert len(sim.created("runs")) == 1


def test_failed_run_raises_with_databricks_message(sim, jobs, operations, create_job):
    job_id = create_job("bad")
    sim.set_timeline("runs", "hold", job_id=job_id)
    op = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id))
    future = _future(op, operations)
    run_id = _wait_for_run_id(future)
    sim.finish_run(run_id, "FAILED", state_message="division by zero in cell 3")
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        future.result(timeout=30)
    assert "division by zero in cell 3" in caught.value.message


def test_cancel_makes_the_future_cancelled(sim, jobs, operations, create_job):
    job_id = create_job("long")
    sim.set_timeline("runs", "hold", job_id=job_id)
    op = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id))
    future = _future(op, operations)
    _wait_for_run_id(future)
    assert future.cancel()
    with pytest.raises(exceptions.GoogleAPICallError):
        future.result(timeout=30)
    assert future.cancelled()
    assert sim.calls(path_contains="runs/cancel") >= 1


def _wait_for_run_id(future) -> int:  # type: ignore[no-untyped-def]
    from lro_server.testing.polling import wait_until

    def run_id() -> int:
        future._refresh_and_update()
        return int(future.metadata.run_id) if future.metadata else 0

    return wait_until(run_id, timeout=20, what="the run to start")
