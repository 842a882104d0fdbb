"""The simulator's Jobs API, driven through the real databricks-sdk."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk._base_client import _BaseClient
from databricks.sdk.errors import (
    InvalidParameterValue,
    InvalidState,
    ResourceDoesNotExist,
    Unauthenticated,
)
from databricks.sdk.service import jobs

from lro_server.testing.databricks_sim import ManualClock, Phase, SimulatorThread


def _job(w: WorkspaceClient, *keys: str, name: str = "etl") -> int:
    tasks = [jobs.Task(task_key=k) for k in keys]
    job_id = w.jobs.create(name=name, tasks=tasks).job_id
    assert job_id is not None
    return job_id


def _run_now(w: WorkspaceClient, job_id: int, **kwargs: object) -> int:
    run_id = w.jobs.run_now(job_id=job_id, **kwargs).run_id  # type: ignore[arg-type]
    assert run_id is not None
    return run_id


def _tasks(run: jobs.Run | jobs.BaseRun) -> list[jobs.RunTask]:
    return run.tasks or []


def _repair_id(w: WorkspaceClient, run_id: int, **kwargs: Any) -> int:
    response: object = w.jobs.repair_run(run_id, **kwargs).response
    assert isinstance(response, jobs.RepairRunResponse) and response.repair_id is not None
    return response.repair_id


def _life(w: WorkspaceClient, run_id: int) -> str | None:
    state = w.jobs.get_run(run_id).state
    assert state is not None
    return state.life_cycle_state.value if state.life_cycle_state else None


def test_jobs_crud_and_errors(w: WorkspaceClient) -> None:
    job_id = _job(w, "a", "b", name="nightly")
    job = w.jobs.get(job_id)
    assert job.settings is not None and job.settings.name == "nightly"
    assert [j.job_id for j in w.jobs.list(name="NIGHTLY")] == [job_id]
    w.jobs.delete(job_id)
    # The SDK maps jobs/get's 400 "Job N does not exist." to ResourceDoesNotExist...
    with pytest.raises(ResourceDoesNotExist):
        w.jobs.get(job_id)
    # ...but run-now's same answer stays InvalidParameterValue.
    with pytest.raises(InvalidParameterValue, match=rf"Job {job_id} does not exist\."):
        w.jobs.run_now(job_id=job_id)
    with pytest.raises(ResourceDoesNotExist, match=r"Run 42 does not exist\."):
        w.jobs.get_run(42)
    with pytest.raises(InvalidParameterValue):
        w.jobs.cancel_run(42)


def test_default_timeline_advances_with_the_clock(
    w: WorkspaceClient, sim: SimulatorThread, sim_clock: ManualClock
) -> None:
    job_id = _job(w, "extract", "load")
    run_id = _run_now(w, job_id)
    run = w.jobs.get_run(run_id)
    assert run.state is not None and run.state.life_cycle_state == jobs.RunLifeCycleState.PENDING
    assert run.end_time == 0
    assert [t.task_key for t in _tasks(run)] == ["extract", "load"]
    assert run.run_page_url == f"{sim.url}/#job/{job_id}/run/{run_id}"
    assert run.number_in_job == 1 and run.attempt_number == 0 and run.job_id == job_id
    sim_clock.advance(0.15)
    assert _life(w, run_id) == "RUNNING"
    sim_clock.advance(0.3)
    run = w.jobs.get_run(run_id)
    assert run.state is not None and run.state.result_state == jobs.RunResultState.SUCCESS
    assert run.status is not None and run.status.termination_details is not None
    assert run.status.state == jobs.RunLifecycleStateV2State.TERMINATED
    assert run.status.termination_details.code == jobs.TerminationCodeCode.SUCCESS
    assert run.start_time is not None and run.end_time == run.start_time + 400
    assert all(t.state and t.state.result_state == jobs.RunResultState.SUCCESS for t in _tasks(run))
    assert len({t.run_id for t in _tasks(run)} | {run_id}) == 3


def test_api_2_1_paths_answer_too(w: WorkspaceClient) -> None:
    job_id = _job(w)
    out = w.api_client.do("POST", "/api/2.1/jobs/run-now", body={"job_id": job_id})
    assert isinstance(out, dict)
    got = w.api_client.do("GET", "/api/2.1/jobs/runs/get", query={"run_id": out["run_id"]})
    assert isinstance(got, dict) and got["state"]["life_cycle_state"] == "PENDING"
    assert "next_page_token" not in got


def test_idempotency_token_dedupes(w: WorkspaceClient, sim: SimulatorThread) -> None:
    job_id = _job(w)
    first = _run_now(w, job_id, idempotency_token="tok-1")
    assert _run_now(w, job_id, idempotency_token="tok-1") == first
    assert _run_now(w, job_id, idempotency_token="tok-2") != first
    submitted: object = w.jobs.submit(run_name="once", idempotency_token="tok-3").run_id
    again: object = w.jobs.submit(run_name="once", idempotency_token="tok-3").run_id
    assert again == submitted
    assert len(sim.created("runs", idempotency_token="tok-1")) == 1
    assert len(sim.created("runs", idempotency_token="tok-3")) == 1
    assert len(sim.created("runs")) == 3


def test_submit_has_one_task_entry_per_task(w: WorkspaceClient) -> None:
    tasks = [jobs.SubmitTask(task_key=k) for k in ("a", "b", "c")]
    run_id = w.jobs.submit(run_name="multi", tasks=tasks).run_id
    assert run_id is not None
    run = w.jobs.get_run(run_id)
    assert [t.task_key for t in _tasks(run)] == ["a", "b", "c"]
    assert run.run_type == jobs.RunType.SUBMIT_RUN and run.run_name == "multi"
    with pytest.raises(InvalidParameterValue):
        w.jobs.submit(tasks=[jobs.SubmitTask(task_key="x"), jobs.SubmitTask(task_key="x")])


def test_timelines_per_job_per_name_and_default(
    w: WorkspaceClient, sim: SimulatorThread, sim_clock: ManualClock
) -> None:
    failing_job = _job(w, name="will-fail")
    named_job = _job(w, name="skips")
    other_job = _job(w, name="other")
    sim.set_timeline("runs", "failed", job_id=failing_job)
    sim.set_timeline("runs", "skipped", run_name="skips")
    sim.set_timeline(
        "runs", [Phase("QUEUED", 1.0), {"state": "TERMINATED", "result_state": "SUCCESS"}]
    )
    failed, skipped, other = (_run_now(w, j) for j in (failing_job, named_job, other_job))
    sim_clock.advance(5)
    run = w.jobs.get_run(failed)
    assert run.state is not None and run.state.result_state == jobs.RunResultState.FAILED
    assert run.state.state_message == "Workload failed, see run output for details"
    task_state = _tasks(run)[0].state
    assert task_state is not None
    assert task_state.state_message == "AssertionError: the input table is empty"
    assert _life(w, skipped) == "SKIPPED"
    assert _life(w, other) == "TERMINATED"
    sim.clear_timelines()
    fresh = _run_now(w, failing_job)
    assert _life(w, fresh) == "PENDING"


def test_internal_error_carries_the_task_message(
    w: WorkspaceClient, sim: SimulatorThread, sim_clock: ManualClock
) -> None:
    job_id = _job(w, "ingest", "train")
    sim.set_timeline("runs", "hold", job_id=job_id)
    run_id = _run_now(w, job_id)
    sim_clock.advance(1)
    assert _life(w, run_id) == "RUNNING"
    sim.finish_run(
        run_id,
        "FAILED",
        life_cycle_state="INTERNAL_ERROR",
        state_message="Task train failed.",
        failing_task="train",
        task_message="OOM on the driver",
    )
    run = w.jobs.get_run(run_id)
    assert run.state is not None
    assert run.state.life_cycle_state == jobs.RunLifeCycleState.INTERNAL_ERROR
    assert run.state.state_message == "Task train failed."
    by_key = {t.task_key: t for t in _tasks(run)}
    assert by_key["train"].state is not None and by_key["ingest"].state is not None
    assert by_key["train"].state.state_message == "OOM on the driver"
    assert by_key["train"].state.result_state == jobs.RunResultState.FAILED
    assert by_key["ingest"].state.result_state == jobs.RunResultState.SUCCESS
    assert run.status is not None and run.status.termination_details is not None
    assert run.status.termination_details.type == jobs.TerminationTypeType.INTERNAL_ERROR


def test_missing_state_and_unknown_enum_values(
    w: WorkspaceClient, sim: SimulatorThread, sim_clock: ManualClock
) -> None:
    job_id = _job(w)
    sim.set_timeline("runs", "no_state", job_id=job_id)
    run_id = _run_now(w, job_id)
    raw = w.api_client.do("GET", "/api/2.2/jobs/runs/get", query={"run_id": run_id})
    assert isinstance(raw, dict) and "state" not in raw and "status" not in raw
    assert w.jobs.get_run(run_id).state is None
    sim.set_timeline("runs", "unknown_state", job_id=job_id)
    odd = _run_now(w, job_id)
    raw = w.api_client.do("GET", "/api/2.2/jobs/runs/get", query={"run_id": odd})
    assert isinstance(raw, dict) and raw["state"]["life_cycle_state"] == "BLOCKED_NEW_STATE"
    # The SDK deserializes values it does not know to None.
    assert _life(w, odd) is None
    sim_clock.advance(1)
    assert _life(w, odd) == "TERMINATED"


def test_cancel_is_asynchronous(
    w: WorkspaceClient, sim: SimulatorThread, sim_clock: ManualClock
) -> None:
    job_id = _job(w)
    sim.set_timeline("runs", "hold")
    run_id = _run_now(w, job_id)
    w.jobs.cancel_run(run_id)
    assert _life(w, run_id) == "TERMINATING"
    sim_clock.advance(0.2)
    run = w.jobs.get_run(run_id)
    assert run.state is not None and run.state.result_state == jobs.RunResultState.CANCELED
    assert run.state.user_cancelled_or_timedout is True
    assert run.status is not None and run.status.termination_details is not None
    assert run.status.termination_details.code == jobs.TerminationCodeCode.USER_CANCELED
    w.jobs.cancel_run(run_id)  # cancelling a finished run is a no-op
    assert _life(w, run_id) == "TERMINATED"


def test_repair_reruns_failed_tasks_and_needs_latest_repair_id(
    w: WorkspaceClient, sim: SimulatorThread, sim_clock: ManualClock
) -> None:
    job_id = _job(w, "a", "b")
    sim.set_timeline("runs", "hold", job_id=job_id)
    run_id = _run_now(w, job_id)
    with pytest.raises(InvalidState):
        w.jobs.repair_run(run_id, rerun_all_failed_tasks=True)
    sim.finish_run(run_id, "FAILED", state_message="b failed", failing_task="b")
    before = {t.task_key: t.run_id for t in _tasks(w.jobs.get_run(run_id))}
    first = _repair_id(w, run_id, rerun_all_failed_tasks=True)
    run = w.jobs.get_run(run_id, include_history=True)
    assert _life(w, run_id) == "PENDING"
    after = {t.task_key: t.run_id for t in _tasks(run)}
    assert after["a"] == before["a"] and after["b"] != before["b"]
    assert [h.type.value for h in run.repair_history or [] if h.type] == ["ORIGINAL", "REPAIR"]
    sim_clock.advance(1)
    sim.finish_run(run_id, "FAILED", state_message="b failed again", failing_task="b")
    with pytest.raises(InvalidParameterValue, match="latest_repair_id"):
        w.jobs.repair_run(run_id, rerun_tasks=["b"])
    second = _repair_id(w, run_id, rerun_tasks=["b"], latest_repair_id=first)
    assert second != first
    sim.finish_run(run_id)
    run = w.jobs.get_run(run_id)
    assert all(t.state and t.state.result_state == jobs.RunResultState.SUCCESS for t in _tasks(run))
    assert len(sim.created("repairs", run_id=run_id)) == 2


def test_runs_list_filters_and_pages(
    w: WorkspaceClient, sim: SimulatorThread, sim_clock: ManualClock
) -> None:
    job_id = _job(w)
    other = _job(w, name="other")
    sim.set_timeline("runs", "hold", job_id=job_id)
    held = [_run_now(w, job_id) for _ in range(7)]
    done = _run_now(w, other)
    sim_clock.advance(1)
    listed = [r.run_id for r in w.jobs.list_runs(limit=2)]
    assert listed == [done, *reversed(held)]  # newest first, every page, no repeats
    assert sorted(r.run_id or 0 for r in w.jobs.list_runs(active_only=True)) == held
    assert [r.run_id for r in w.jobs.list_runs(completed_only=True)] == [done]
    assert [r.run_id for r in w.jobs.list_runs(job_id=other)] == [done]
    page = w.api_client.do("GET", "/api/2.2/jobs/runs/list", query={"limit": 3})
    assert isinstance(page, dict) and page["has_more"] is True and page["next_page_token"]
    last = w.api_client.do("GET", "/api/2.2/jobs/runs/list", query={"limit": 3, "offset": 6})
    assert isinstance(last, dict) and last["has_more"] is False
    assert "next_page_token" not in last and "tasks" not in last["runs"][0]
    expanded = next(iter(w.jobs.list_runs(job_id=other, expand_tasks=True)))
    assert [t.task_key for t in _tasks(expanded)] == ["main"]
    with pytest.raises(InvalidParameterValue):
        list(w.jobs.list_runs(limit=26))
    with pytest.raises(InvalidParameterValue):
        list(w.jobs.list_runs(active_only=True, completed_only=True))


def test_get_output(w: WorkspaceClient, sim: SimulatorThread, sim_clock: ManualClock) -> None:
    job_id = _job(w)
    sim.set_timeline(
        "runs",
        [
            Phase("RUNNING", 0.1),
            Phase("TERMINATED", fields={"result_state": "SUCCESS", "notebook_result": "42"}),
        ],
    )
    run_id = _run_now(w, job_id)
    sim_clock.advance(1)
    out = w.jobs.get_run_output(run_id)
    assert out.notebook_output is not None and out.notebook_output.result == "42"
    multi = w.jobs.submit(tasks=[jobs.SubmitTask(task_key="x"), jobs.SubmitTask(task_key="y")])
    assert multi.run_id is not None
    with pytest.raises(InvalidParameterValue, match="multiple tasks"):
        w.jobs.get_run_output(multi.run_id)
    task_run = _tasks(w.jobs.get_run(multi.run_id))[1].run_id
    assert task_run is not None
    assert w.jobs.get_run_output(task_run).metadata is not None


def test_auth_and_unknown_paths(sim: SimulatorThread) -> None:
    answer = requests.get(f"{sim.url}/api/2.2/jobs/runs/list", timeout=5)
    assert answer.status_code == 401
    assert set(answer.json()) == {"error_code", "message"}
    # The SDK's HTTP layer without credentials sees the 401 as Unauthenticated.
    with pytest.raises(Unauthenticated):
        _BaseClient(retry_timeout_seconds=1).do("GET", f"{sim.url}/api/2.2/jobs/list")
    missing = requests.get(
        f"{sim.url}/api/2.2/nothing/here", headers={"Authorization": "Bearer x"}, timeout=5
    )
    assert missing.status_code == 404 and missing.json()["error_code"] == "ENDPOINT_NOT_FOUND"
