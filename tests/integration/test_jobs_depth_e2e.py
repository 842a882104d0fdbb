"""Jobs in depth, end to end through gRPC and the simulator (real SDK): task outputs in a
run's result, TrackRun, repair on failure (exactly once, also when the repair's answer is
lost), labels and the metadata filters."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from family_helpers import SETTLE, future, manual_simulator, metadata_when, outcome, rest
from google.api_core import exceptions
from google.protobuf import duration_pb2

from lro_server._proto.lro.databricks.v1 import jobs_pb2
from lro_server.testing.databricks_sim import SimulatorThread
from lro_server.testing.polling import wait_until


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    yield from manual_simulator()


def _run_future(op, operations):
    return future(op, operations, jobs_pb2.Run, jobs_pb2.RunMetadata)


def _failing(termination_type: str = "CLOUD_FAILURE", task: str = "t1") -> list[dict[str, object]]:
    return [
        {"state": "RUNNING", "seconds": 0.5},
        {
            "state": "TERMINATED",
            "result_state": "FAILED",
            "state_message": "Workload failed, see run output for details",
            "task_message": "AssertionError: the input table is empty",
            "failing_task": task,
            "termination_type": termination_type,
        },
    ]


def test_a_finished_run_carries_each_tasks_output(sim, jobs, operations, create_job):
    job_id = create_job("report", tasks=2)
    sim.set_timeline(
        "runs",
        [
            {"state": "RUNNING", "seconds": 0.5},
            {"state": "TERMINATED", "result_state": "SUCCESS", "notebook_result": "x" * 20000},
        ],
        job_id=job_id,
    )
    fut = _run_future(jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id)), operations)
    metadata_when(fut, lambda m: m.run_id > 0, "the run id")
    sim.advance(SETTLE)
    run = fut.result(timeout=30)
    assert sorted(o.task_key for o in run.outputs) == ["t0", "t1"]
    for output in run.outputs:
        assert output.result_state == "SUCCESS" and output.run_id > 0
        assert output.notebook_result == "x" * 16384 and output.notebook_result_truncated
    assert sim.calls(path_contains="runs/get-output") == 2


def test_a_failed_run_names_the_failing_task_and_its_error(sim, jobs, operations, create_job):
    job_id = create_job("etl", tasks=2)
    sim.set_timeline("runs", _failing(), job_id=job_id)
    fut = _run_future(jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id)), operations)
    metadata_when(fut, lambda m: m.run_id > 0, "the run id")
    sim.advance(SETTLE)
    op = outcome(fut)
    assert op.error.code == 2
    assert op.error.message == "task t1 failed: AssertionError: the input table is empty"
    outputs = []
    for detail in op.error.details:
        output = jobs_pb2.TaskOutput()
        if detail.Unpack(output):
            outputs.append(output)
    assert [o.task_key for o in outputs] == ["t1"]
    assert outputs[0].error == "AssertionError: the input table is empty"
    assert outputs[0].error_trace.startswith("Traceback")


def test_output_reads_survive_throttling_and_outages(sim, jobs, operations, create_job):
    job_id = create_job("flaky", tasks=1)
    sim.inject_fault("rate_limit", path="get-output", times=2, retry_after=0)
    sim.inject_fault("unavailable", path="get-output", times=2, retry_after=0)
    sim.inject_fault("drop_after_commit", path="get-output", times=1)
    fut = _run_future(jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id)), operations)
    metadata_when(fut, lambda m: m.run_id > 0, "the run id")
    sim.advance(SETTLE)
    run = fut.result(timeout=30)
    assert [o.result_state for o in run.outputs] == ["SUCCESS"]
    assert not run.outputs[0].unavailable


def test_track_run_follows_a_run_started_elsewhere(sim, jobs, operations, create_job):
    job_id = create_job("scheduled", tasks=1)
    sim.set_timeline("runs", "hold", job_id=job_id)
    run_id = int(rest(sim)("POST", "/api/2.2/jobs/run-now", body={"job_id": job_id})["run_id"])
    sim.advance(1)
    created = len(sim.created("runs"))

    first = jobs.TrackRun(jobs_pb2.TrackRunRequest(run_id=run_id, labels={"team": "data"}))
    again = jobs.TrackRun(jobs_pb2.TrackRunRequest(run_id=run_id))
    assert again.name == first.name
    fut = _run_future(first, operations)
    meta = metadata_when(fut, lambda m: m.life_cycle_state == "RUNNING", "the run running")
    assert meta.tracked and meta.run_id == run_id and meta.job_id == job_id
    assert dict(meta.labels) == {"team": "data"}
    sim.finish_run(run_id, "SUCCESS")
    run = fut.result(timeout=30)
    assert run.run_id == run_id and run.result_state == "SUCCESS"
    assert len(sim.created("runs")) == created  # nothing was started
    assert sim.calls(path_contains="run-now") == 1  # only the test's own


def test_track_run_of_an_unknown_run_is_refused(jobs):
    with pytest.raises(grpc.RpcError) as caught:
        jobs.TrackRun(jobs_pb2.TrackRunRequest(run_id=987654))
    assert caught.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)
    assert "987654" in caught.value.details()


def _repair_policy(max_repairs: int, delay: float = 1.0, types=()) -> jobs_pb2.RepairPolicy:
    return jobs_pb2.RepairPolicy(
        max_repairs=max_repairs,
        delay=duration_pb2.Duration(seconds=int(delay)),
        termination_types=list(types),
    )


def _repair_pending(meta) -> bool:
    return len(meta.repairs) > 0 and meta.repairs[-1].repair_id == 0


def test_repair_on_failure_reruns_the_failed_tasks_with_the_runs_parameters(
    sim, jobs, operations, create_job
):
    job_id = create_job("nightly", tasks=2)
    sim.set_timeline("runs", _failing(), job_id=job_id)
    request = jobs_pb2.RunNowRequest(
        job_id=job_id,
        job_parameters={"day": "2024-06-01"},
        repair_policy=_repair_policy(2, types=["CLOUD_FAILURE"]),
    )
    fut = _run_future(jobs.RunNow(request), operations)
    meta = metadata_when(fut, lambda m: m.run_id > 0, "the run id")
    run_id = meta.run_id
    sim.advance(SETTLE)
    metadata_when(fut, _repair_pending, "the repair decided")
    sim.set_timeline("runs", "success", job_id=job_id)  # the repair succeeds
    meta = metadata_when(fut, lambda m: m.repairs and m.repairs[0].repair_id > 0, "the repair")
    assert list(meta.repairs[0].rerun_tasks) == ["t1"]
    assert meta.repairs[0].termination_type == "CLOUD_FAILURE"
    sim.advance(SETTLE)
    run = fut.result(timeout=30)
    assert run.result_state == "SUCCESS" and run.run_id == run_id
    assert [r.result_state for r in run.repairs] == ["SUCCESS"]
    repaired = rest(sim)("GET", "/api/2.2/jobs/runs/get", query={"run_id": run_id})
    assert repaired["job_parameters"] == [{"name": "day", "value": "2024-06-01"}]
    assert len(sim.created("repairs")) == 1


def test_repair_stops_at_the_limit_and_ends_with_the_last_attempt(
    sim, jobs, operations, create_job
):
    job_id = create_job("broken", tasks=1)
    sim.set_timeline("runs", _failing(task="t0"), job_id=job_id)
    request = jobs_pb2.RunNowRequest(job_id=job_id, repair_policy=_repair_policy(2, delay=0))
    fut = _run_future(jobs.RunNow(request), operations)
    metadata_when(fut, lambda m: m.run_id > 0, "the run id")
    for attempts in (1, 2):
        sim.advance(SETTLE)
        metadata_when(
            fut,
            lambda m, n=attempts: len(m.repairs) == n and m.repairs[-1].repair_id > 0,
            f"repair {attempts}",
        )
    sim.advance(SETTLE)
    op = outcome(fut)
    assert op.error.code == 2 and "task" in op.error.message
    assert [r.result_state for r in fut.metadata.repairs] == ["FAILED", "FAILED"]
    assert len(sim.created("repairs")) == 2


def test_a_failure_of_another_type_is_not_repaired(sim, jobs, operations, create_job):
    job_id = create_job("user-bug", tasks=1)
    sim.set_timeline("runs", _failing("CLIENT_ERROR", task="t0"), job_id=job_id)
    policy = _repair_policy(3, delay=0, types=["CLOUD_FAILURE"])
    fut = _run_future(
        jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id, repair_policy=policy)), operations
    )
    metadata_when(fut, lambda m: m.run_id > 0, "the run id")
    sim.advance(SETTLE)
    assert outcome(fut).error.code == 2
    assert len(fut.metadata.repairs) == 0 and not sim.created("repairs")


def test_a_repair_whose_answer_is_lost_is_adopted_not_repeated(sim, jobs, operations, create_job):
    # Databricks applies the repair, then the connection drops before the answer: the
    # server never learned the repair id. The stored intent and the run's repair history
    # make the next poll adopt that repair instead of repairing a second time.
    job_id = create_job("lost", tasks=1)
    sim.set_timeline("runs", _failing(task="t0"), job_id=job_id)
    sim.inject_fault("drop_after_commit", path="runs/repair", times=1)
    request = jobs_pb2.RunNowRequest(job_id=job_id, repair_policy=_repair_policy(1, delay=0))
    fut = _run_future(jobs.RunNow(request), operations)
    metadata_when(fut, lambda m: m.run_id > 0, "the run id")
    sim.advance(SETTLE)
    wait_until(lambda: sim.calls(path_contains="runs/repair") >= 1, timeout=20, what="repair")
    meta = metadata_when(fut, lambda m: m.repairs and m.repairs[0].repair_id > 0, "adopted")
    (repair,) = sim.created("repairs")
    assert meta.repairs[0].repair_id == int(repair.entity_id)
    sim.advance(SETTLE)
    outcome(fut)
    assert sim.calls(path_contains="runs/repair") == 1
    assert len(sim.created("repairs")) == 1


def test_bad_repair_policies_and_labels_are_refused(sim, jobs, create_job):
    job_id = create_job("x")
    bad = [
        jobs_pb2.RunNowRequest(job_id=job_id, repair_policy=_repair_policy(99)),
        jobs_pb2.RunNowRequest(
            job_id=job_id, repair_policy=_repair_policy(1, types=["cloud failure"])
        ),
        jobs_pb2.RunNowRequest(job_id=job_id, labels={"Team": "x"}),
        jobs_pb2.RunNowRequest(job_id=job_id, labels={"team": "X Y"}),
    ]
    for request in bad:
        with pytest.raises(grpc.RpcError) as caught:
            jobs.RunNow(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert not sim.created("runs")  # nothing was started


def test_labels_and_metadata_filters_find_operations(sim, jobs, operations, create_job):
    job_a, job_b = create_job("a"), create_job("b")
    sim.set_timeline("runs", "hold")
    first = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_a, labels={"team": "data"}))
    second = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_b, labels={"team": "ml"}))
    fut = _run_future(first, operations)
    run_id = metadata_when(fut, lambda m: m.run_id > 0, "the run id").run_id
    assert dict(fut.metadata.labels) == {"team": "data"}

    def names(text: str) -> list[str]:
        return [op.name for op in operations.list_operations("operations", text)]

    assert names('labels.team = "data"') == [first.name]
    assert names('labels.team = "ml" AND done = false') == [second.name]
    assert names(f"metadata.job_id = {job_b}") == [second.name]
    assert names(f"metadata.run_id = {run_id}") == [first.name]
    assert names("labels.team:*") == [second.name, first.name]
    with pytest.raises(exceptions.InvalidArgument):
        names('labels.Team = "x"')
    with pytest.raises(exceptions.InvalidArgument):
        names('metadata.job_id = "abc"')
