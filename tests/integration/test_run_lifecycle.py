"""Jobs operations from start to end: AIP-155 request ids, final states, timeouts, verdicts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
import requests
from google.api_core import exceptions
from google.protobuf import duration_pb2
from lro_steps import error_info, grpc_status, run_metadata, start_held, wait_done, wait_run_id

from lro_server._proto.lro.databricks.v1 import jobs_pb2
from lro_server.testing.polling import wait_until

# -- AIP-155 ------------------------------------------------------------------------------


def test_same_request_id_same_operation_one_run(sim, jobs, operations, create_job):
    job_id = create_job()
    request = jobs_pb2.RunNowRequest(job_id=job_id, request_id="nightly-2024-05-01")
    first = jobs.RunNow(request)
    second = jobs.RunNow(request)
    assert second.name == first.name
    wait_done(operations, first.name)
    third = jobs.RunNow(request)  # also once the operation is done
    assert third.name == first.name and third.done
    assert len(sim.created("runs")) == 1
    assert len(list(operations.list_operations("operations", ""))) == 1


def test_concurrent_same_request_id_one_operation_one_run(sim, jobs, create_job):
    job_id = create_job()
    sim.set_timeline("runs", "hold", job_id=job_id)
    request = jobs_pb2.RunNowRequest(job_id=job_id, request_id="burst")
    with ThreadPoolExecutor(8) as pool:
        names = set(pool.map(lambda _: jobs.RunNow(request).name, range(16)))
    assert len(names) == 1
    assert len(sim.created("runs")) == 1


def test_different_request_ids_two_operations_two_runs(sim, jobs, create_job):
    job_id = create_job()
    sim.set_timeline("runs", "hold", job_id=job_id)
    a = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id, request_id="a"))
    b = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id, request_id="b"))
    c = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id))
    d = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id))
    assert len({a.name, b.name, c.name, d.name}) == 4
    assert len(sim.created("runs")) == 4
    tokens = {e.attrs["idempotency_token"] for e in sim.created("runs")}
    assert len(tokens) == 4 and all(tokens)


def test_request_id_shared_by_grpc_and_http(sim, jobs, server, create_job):
    job_id = create_job()
    sim.set_timeline("runs", "hold", job_id=job_id)
    op = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id, request_id="both-fronts"))
    body = {"job_id": job_id, "request_id": "both-fronts"}
    answer = requests.post(
        f"{server.http_url}/lro.databricks.v1.Jobs/RunNow", json=body, timeout=10
    ).json()
    assert answer["name"] == op.name
    assert len(sim.created("runs")) == 1


def test_request_id_reused_by_another_method_is_refused(sim, jobs, create_job):
    job_id = create_job()
    jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id, request_id="taken"))
    with pytest.raises(grpc.RpcError) as caught:
        jobs.Submit(
            jobs_pb2.SubmitRunRequest(run_name="x", tasks=[{"task_key": "t"}], request_id="taken")
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(grpc_status(caught.value)).reason == "REQUEST_ID_REUSED"
    assert len(sim.created("runs")) == 1


# -- a done operation never changes ----------------------------------------------------


@pytest.mark.parametrize("outcome", ["SUCCESS", "FAILED"])
def test_cancel_after_completion_changes_nothing(sim, jobs, operations, create_job, outcome):
    op = start_held(jobs, sim, create_job())
    run_id = wait_run_id(operations, op.name)
    sim.finish_run(run_id, outcome, state_message="over")
    done = wait_done(operations, op.name)
    assert (done.WhichOneof("result") == "response") == (outcome == "SUCCESS")
    operations.cancel_operation(op.name)
    operations.cancel_operation(op.name)
    assert operations.get_operation(op.name) == done
    assert sim.calls(path_contains="runs/cancel") == 0


def test_cancel_twice_sends_one_databricks_cancel(sim, jobs, operations, create_job):
    op = start_held(jobs, sim, create_job())
    wait_run_id(operations, op.name)
    operations.cancel_operation(op.name)
    operations.cancel_operation(op.name)
    done = wait_done(operations, op.name)
    assert done.error.code == 1
    assert run_metadata(done).life_cycle_state == "TERMINATED"
    operations.cancel_operation(op.name)
    assert operations.get_operation(op.name) == done
    assert sim.calls(path_contains="runs/cancel") == 1


def test_timeout_fails_with_deadline_exceeded_and_cancels_the_run(
    sim, jobs, operations, create_job
):
    timeout = duration_pb2.Duration(seconds=1)
    op = start_held(jobs, sim, create_job(), timeout=timeout)
    meta = run_metadata(op)
    assert meta.deadline.ToMicroseconds() - meta.create_time.ToMicroseconds() == 1_000_000
    done = wait_done(operations, op.name, timeout=10)
    assert done.error.code == 4 and not done.HasField("response")
    assert "timeout" in done.error.message
    assert sim.calls(path_contains="runs/cancel") == 1
    operations.cancel_operation(op.name)
    assert operations.get_operation(op.name) == done


def test_default_timeout_is_twenty_minutes(sim, jobs, create_job):
    op = start_held(jobs, sim, create_job())
    meta = run_metadata(op)
    assert meta.deadline.ToSeconds() - meta.create_time.ToSeconds() in (1199, 1200)


# -- outcome judged by result --------------------------------------------------------------


def _finish(sim, operations, op_name: str, **finish: Any):
    run_id = wait_run_id(operations, op_name)
    sim.finish_run(run_id, **finish)
    return wait_done(operations, op_name)


@pytest.mark.parametrize(
    ("finish", "code", "message"),
    [
        ({"result_state": "FAILED", "state_message": "ZeroDivisionError"}, 2, "ZeroDivisionError"),
        (
            {
                "result_state": "FAILED",
                "life_cycle_state": "INTERNAL_ERROR",
                "state_message": "Task failed with an internal error",
                "task_message": "Could not reach driver of cluster 0101",
            },
            2,
            "Could not reach driver of cluster 0101",
        ),
        (
            {
                "result_state": None,
                "life_cycle_state": "SKIPPED",
                "state_message": "Skipping this run because of the concurrency limit",
            },
            9,
            "Skipping this run",
        ),
        ({"result_state": "TIMEDOUT", "state_message": "Run timed out."}, 4, "Run timed out."),
        ({"result_state": "CANCELED", "state_message": "Cancelled by bob"}, 1, "Cancelled by bob"),
    ],
    ids=["failed", "internal-error", "skipped", "timedout", "canceled-elsewhere"],
)
def test_failures_are_judged_by_result(sim, jobs, operations, create_job, finish, code, message):
    op = start_held(jobs, sim, create_job(tasks=2))
    done = _finish(sim, operations, op.name, **finish)
    assert done.error.code == code, done.error
    assert message in done.error.message
    assert not done.HasField("response")
    info = error_info(done.error)
    assert info.reason.startswith("DATABRICKS_RUN_")
    meta = run_metadata(done)
    assert meta.HasField("end_time") and meta.progress_percent == 100


def test_success_with_failures_is_a_success(sim, jobs, operations, create_job):
    op = start_held(jobs, sim, create_job(tasks=2))
    done = _finish(sim, operations, op.name, result_state="SUCCESS_WITH_FAILURES")
    run = jobs_pb2.Run()
    assert done.response.Unpack(run) and run.result_state == "SUCCESS_WITH_FAILURES"
    assert [t.task_key for t in run.tasks] == ["t0", "t1"]


def test_failure_through_the_api_core_future(sim, jobs, operations, create_job):
    from google.api_core import operation

    op = start_held(jobs, sim, create_job())
    future = operation.from_gapic(op, operations, jobs_pb2.Run, metadata_type=jobs_pb2.RunMetadata)
    _finish(
        sim,
        operations,
        op.name,
        result_state="FAILED",
        life_cycle_state="INTERNAL_ERROR",
        state_message="generic",
        task_message="the driver died",
    )
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        future.result(timeout=10)
    assert "the driver died" in caught.value.message


@pytest.mark.parametrize(
    "phase",
    [
        {"state": "RUNNING", "omit_state": True, "omit_status": True},
        {"state": "RUNNING", "omit_state": True},
        {"state": "BLOCKED_NEW_STATE"},
        {"state": "TERMINATED", "result_state": "SOMETHING_NEW"},
    ],
    ids=["no-state-no-status", "no-state", "unknown-life-cycle", "unknown-result"],
)
def test_unknown_or_missing_state_stays_pending_until_finished(
    sim, jobs, operations, create_job, phase
):
    job_id = create_job()
    sim.set_timeline("runs", [phase], job_id=job_id)
    op = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id))
    run_id = wait_run_id(operations, op.name)
    polls = sim.calls(path_contains="runs/get")
    wait_until(
        lambda: sim.calls(path_contains="runs/get") >= polls + 3,
        timeout=10,
        what="three more polls",
    )
    current = operations.get_operation(op.name)
    assert not current.done, current
    if phase["state"] == "BLOCKED_NEW_STATE":
        assert run_metadata(current).life_cycle_state == "BLOCKED_NEW_STATE"
    sim.finish_run(run_id, "SUCCESS")
    done = wait_done(operations, op.name)
    assert done.HasField("response")
