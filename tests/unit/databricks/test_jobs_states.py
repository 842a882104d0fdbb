"""Run state → verdict, table-style over every value of Databricks' own enums."""

from __future__ import annotations

from typing import Any

import pytest
from databricks.sdk.service import jobs as sdk

from lro_server.core.errors import Code
from lro_server.databricks import jobs_states
from lro_server.databricks.family import PENDING
from lro_server.databricks.jobs_states import judge_run, progress_percent

LIFE_CYCLE = [m.value for m in sdk.RunLifeCycleState]
RESULTS = [m.value for m in sdk.RunResultState]
TERMINATION = [m.value for m in sdk.TerminationCodeCode]
V2_STATES = [m.value for m in sdk.RunLifecycleStateV2State]


def _run(
    life_cycle: str | None = None,
    result: str | None = None,
    *,
    message: str = "",
    status: str | None = None,
    termination: str | None = None,
    tasks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    run: dict[str, Any] = {"run_id": 7}
    if life_cycle is not None:
        run["state"] = {"life_cycle_state": life_cycle, "state_message": message}
        if result is not None:
            run["state"]["result_state"] = result
    if status is not None:
        run["status"] = {"state": status}
        if termination is not None:
            run["status"]["termination_details"] = {"code": termination, "message": message}
    if tasks is not None:
        run["tasks"] = tasks
    return run


# -- every SDK value is mapped ----------------------------------------------------------


def test_every_life_cycle_state_is_classified():
    known = jobs_states.RUNNING_LIFE_CYCLE | jobs_states.FINAL_LIFE_CYCLE
    assert sorted(set(LIFE_CYCLE) - known) == []
    assert not jobs_states.RUNNING_LIFE_CYCLE & jobs_states.FINAL_LIFE_CYCLE


def test_every_result_state_is_mapped():
    assert sorted(set(RESULTS) - set(jobs_states.RESULT_CODES)) == []


def test_every_termination_code_is_mapped():
    assert sorted(set(TERMINATION) - set(jobs_states.TERMINATION_CODES)) == []


# -- life cycle ------------------------------------------------------------------------


@pytest.mark.parametrize("life_cycle", sorted(jobs_states.RUNNING_LIFE_CYCLE))
@pytest.mark.parametrize("result", [None, *RESULTS])
def test_running_life_cycle_is_pending_whatever_the_result(life_cycle, result):
    assert judge_run(_run(life_cycle, result)) == PENDING


@pytest.mark.parametrize("life_cycle", ["BLOCKED_NEW_STATE", "FUTURE", "terminated"])
@pytest.mark.parametrize("result", [None, "SUCCESS", "FAILED"])
def test_unknown_life_cycle_is_pending(life_cycle, result):
    assert judge_run(_run(life_cycle, result)) == PENDING


def test_run_without_state_or_status_is_pending():
    assert judge_run({"run_id": 1}) == PENDING
    assert judge_run({"run_id": 1, "state": None, "status": None}) == PENDING
    assert judge_run({"run_id": 1, "state": {}}) == PENDING


# -- TERMINATED: the result decides ------------------------------------------------------

EXPECTED_RESULT = {
    "SUCCESS": Code.OK,
    "SUCCESS_WITH_FAILURES": Code.OK,
    "EXCLUDED": Code.OK,
    "FAILED": Code.UNKNOWN,
    "UPSTREAM_FAILED": Code.UNKNOWN,
    "TIMEDOUT": Code.DEADLINE_EXCEEDED,
    "CANCELED": Code.CANCELLED,
    "UPSTREAM_CANCELED": Code.CANCELLED,
    "MAXIMUM_CONCURRENT_RUNS_REACHED": Code.RESOURCE_EXHAUSTED,
    "DISABLED": Code.FAILED_PRECONDITION,
}


def test_expected_result_table_covers_the_sdk():
    assert sorted(EXPECTED_RESULT) == sorted(RESULTS)


@pytest.mark.parametrize("result", RESULTS)
def test_terminated_is_judged_by_result(result):
    verdict = judge_run(_run("TERMINATED", result, message=f"ended {result}"))
    assert verdict.done
    assert verdict.code == EXPECTED_RESULT[result]
    assert verdict.message == f"ended {result}"


def test_terminated_failed_is_a_failure_with_databricks_message():
    verdict = judge_run(_run("TERMINATED", "FAILED", message="division by zero"))
    assert verdict.done and not verdict.succeeded
    assert verdict.message == "division by zero"


def test_failure_prefers_the_failing_task_message():
    tasks = [
        {"task_key": "a", "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"}},
        {
            "task_key": "b",
            "state": {
                "life_cycle_state": "TERMINATED",
                "result_state": "FAILED",
                "state_message": "AssertionError: empty table",
            },
        },
    ]
    verdict = judge_run(_run("TERMINATED", "FAILED", message="Workload failed", tasks=tasks))
    assert verdict.code == Code.UNKNOWN
    assert verdict.message == "task b failed: AssertionError: empty table"


@pytest.mark.parametrize("result", ["NEW_RESULT", "succeeded"])
def test_unknown_result_is_pending_never_success(result):
    assert judge_run(_run("TERMINATED", result)) == PENDING


def test_terminated_without_any_result_is_pending():
    assert judge_run(_run("TERMINATED")) == PENDING


# -- INTERNAL_ERROR and SKIPPED ----------------------------------------------------------


@pytest.mark.parametrize("result", [None, *RESULTS])
def test_internal_error_is_always_a_failure(result):
    verdict = judge_run(_run("INTERNAL_ERROR", result, message="internal"))
    assert verdict.done and verdict.code == Code.UNKNOWN
    assert verdict.message == "internal"


def test_internal_error_carries_the_failing_task_message():
    tasks = [
        {
            "task_key": "etl",
            "state": {
                "life_cycle_state": "INTERNAL_ERROR",
                "state_message": "Could not reach driver",
            },
        }
    ]
    verdict = judge_run(
        _run("INTERNAL_ERROR", "FAILED", message="Task failed with an internal error", tasks=tasks)
    )
    assert verdict.done and verdict.code == Code.UNKNOWN
    assert verdict.message == "task etl failed: Could not reach driver"


def test_internal_error_without_any_message_says_so():
    verdict = judge_run(_run("INTERNAL_ERROR"))
    assert verdict.done and verdict.message == "run ended: internal error"


def test_skipped_without_result_is_a_failure():
    verdict = judge_run(_run("SKIPPED", message="Skipping this run"))
    assert verdict.done and verdict.code == Code.FAILED_PRECONDITION
    assert verdict.message == "Skipping this run"


def test_skipped_for_concurrency_is_resource_exhausted():
    run = _run(
        "SKIPPED",
        message="max concurrent runs",
        status="TERMINATED",
        termination="MAX_CONCURRENT_RUNS_EXCEEDED",
    )
    verdict = judge_run(run)
    assert verdict.done and verdict.code == Code.RESOURCE_EXHAUSTED


# -- API 2.2 status only ----------------------------------------------------------------


@pytest.mark.parametrize("status", [s for s in V2_STATES if s != "TERMINATED"])
def test_status_only_not_terminated_is_pending(status):
    assert judge_run(_run(status=status)) == PENDING


@pytest.mark.parametrize("code", TERMINATION)
def test_status_only_terminated_is_judged_by_termination_code(code):
    verdict = judge_run(_run(status="TERMINATED", termination=code, message=f"because {code}"))
    assert verdict.done
    assert verdict.code == jobs_states.TERMINATION_CODES[code]
    assert verdict.succeeded == (code in ("SUCCESS", "SUCCESS_WITH_FAILURES"))
    assert verdict.message == f"because {code}"


def test_status_only_unknown_termination_code_is_a_failure():
    verdict = judge_run(_run(status="TERMINATED", termination="SOMETHING_NEW", message="x"))
    assert verdict.done and verdict.code == Code.UNKNOWN


def test_status_only_terminated_without_code_is_pending():
    assert judge_run(_run(status="TERMINATED")) == PENDING


@pytest.mark.parametrize("status", ["QUEUED_V3", ""])
def test_status_only_unknown_is_pending(status):
    assert judge_run({"run_id": 1, "status": {"state": status}}) == PENDING


# -- progress ---------------------------------------------------------------------------


def test_progress_counts_finished_tasks():
    def task(state: str) -> dict[str, Any]:
        return {"state": {"life_cycle_state": state}}

    assert progress_percent({"tasks": [task("TERMINATED"), task("RUNNING")]}) == 50
    assert progress_percent({"tasks": [task("SKIPPED"), task("INTERNAL_ERROR")]}) == 100
    assert progress_percent(_run("RUNNING")) == 0
    assert progress_percent(_run("TERMINATED", "SUCCESS")) == 100
    assert progress_percent({}) == 0
