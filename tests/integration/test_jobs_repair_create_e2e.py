"""Jobs.RepairRun and Jobs.CreateAndRun end to end: gRPC API → server → simulator."""

from __future__ import annotations

import grpc
import pytest
from family_helpers import (
    assert_cancelled,
    assert_timed_out,
    calls_reach,
    future,
    metadata_when,
    outcome,
    seconds,
)
from google.protobuf import struct_pb2

from lro_server._proto.lro.databricks.v1 import jobs_pb2


def _future(op, operations):
    return future(op, operations, jobs_pb2.Run, jobs_pb2.RunMetadata)


def _failed_run(sim, jobs, operations, create_job) -> int:
    job_id = create_job("flaky", tasks=2)
    sim.set_timeline("runs", "failed", job_id=job_id)
    fut = _future(jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id)), operations)
    outcome(fut)
    sim.set_timeline("runs", "success", job_id=job_id)
    return int(fut.metadata.run_id)


def _repair(run_id: int, **extra) -> jobs_pb2.RepairRunRequest:
    return jobs_pb2.RepairRunRequest(run_id=run_id, rerun_all_failed_tasks=True, **extra)


def test_repair_success_twice_passes_the_latest_repair_id(sim, jobs, operations, create_job):
    run_id = _failed_run(sim, jobs, operations, create_job)
    for _ in range(2):  # the second repair needs latest_repair_id: the server looks it up
        request = jobs_pb2.RepairRunRequest(run_id=run_id, rerun_tasks=["t0"])
        fut = _future(jobs.RepairRun(request), operations)
        run = fut.result(timeout=30)
        assert run.run_id == run_id and run.result_state == "SUCCESS"
        assert fut.metadata.repair_id > 0
    assert len(sim.created("repairs")) == 2


def test_repair_failure_carries_the_task_message(sim, jobs, operations, create_job):
    run_id = _failed_run(sim, jobs, operations, create_job)
    job_id = int(sim.created("runs")[0].attrs["job_id"])
    sim.set_timeline("runs", "failed", job_id=job_id)
    op = outcome(_future(jobs.RepairRun(_repair(run_id)), operations))
    assert op.error.code == 2
    assert op.error.message == "task t0 failed: AssertionError: the input table is empty"


def test_repair_of_an_active_run_is_refused(sim, jobs, operations, create_job):
    job_id = create_job("busy")
    sim.set_timeline("runs", "hold", job_id=job_id)
    fut = _future(jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id)), operations)
    run_id = metadata_when(fut, lambda m: m.run_id > 0, "the run").run_id
    with pytest.raises(grpc.RpcError) as caught:
        jobs.RepairRun(_repair(run_id))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "still active" in caught.value.details()


def test_repair_cancel_and_timeout(sim, jobs, operations, create_job):
    run_id = _failed_run(sim, jobs, operations, create_job)
    job_id = int(sim.created("runs")[0].attrs["job_id"])
    sim.set_timeline("runs", "hold", job_id=job_id)
    fut = _future(jobs.RepairRun(_repair(run_id)), operations)
    metadata_when(fut, lambda m: m.life_cycle_state in ("PENDING", "RUNNING"), "the repair")
    assert fut.cancel()
    assert_cancelled(outcome(fut))
    fut = _future(jobs.RepairRun(_repair(run_id, timeout=seconds(1))), operations)
    assert_timed_out(outcome(fut))
    assert sim.calls(path_contains="runs/cancel") >= 2


def _task(key: str) -> struct_pb2.Struct:
    task = struct_pb2.Struct()
    task.update({"task_key": key, "notebook_task": {"notebook_path": f"/nb/{key}"}})
    return task


def _create_and_run(name: str, **extra) -> jobs_pb2.CreateAndRunRequest:
    return jobs_pb2.CreateAndRunRequest(
        name=name, tasks=[_task("main")], job_parameters={"day": "2026-12-01"}, **extra
    )


def test_create_and_run_success_tags_the_job(sim, jobs, operations):
    op = jobs.CreateAndRun(_create_and_run("nightly"))
    run = _future(op, operations).result(timeout=30)
    assert run.result_state == "SUCCESS" and run.job_id > 0
    (job,) = sim.created("jobs")
    assert int(job.entity_id) == run.job_id
    (created_run,) = sim.created("runs")
    assert created_run.attrs["idempotency_token"] == op.name.split("/")[1]


def test_create_and_run_failure(sim, jobs, operations):
    sim.set_timeline("runs", "failed", run_name="broken")
    op = outcome(_future(jobs.CreateAndRun(_create_and_run("broken")), operations))
    assert op.error.code == 2
    assert op.error.message == "task main failed: AssertionError: the input table is empty"


def test_create_and_run_cancel(sim, jobs, operations):
    sim.set_timeline("runs", "hold", run_name="long")
    fut = _future(jobs.CreateAndRun(_create_and_run("long")), operations)
    metadata_when(fut, lambda m: m.run_id > 0, "the run")
    assert fut.cancel()
    calls_reach(sim, "runs/cancel")
    assert_cancelled(outcome(fut))


def test_create_and_run_timeout(sim, jobs, operations):
    sim.set_timeline("runs", "hold", run_name="slow")
    fut = _future(jobs.CreateAndRun(_create_and_run("slow", timeout=seconds(1))), operations)
    assert_timed_out(outcome(fut))
    assert sim.calls(path_contains="runs/cancel") >= 1
