"""Databricks job run state → verdict: pure tables, tested over every enum value.

A run is judged by its result, not its life cycle: TERMINATED with result_state FAILED is a
failure, INTERNAL_ERROR carries the failing task's message, and a state this server does
not know (a newer Databricks, or one the SDK would turn into None) is pending, never success.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from lro_server.core.errors import Code
from lro_server.databricks.family import PENDING, Verdict

_log = logging.getLogger(__name__)

#: Life-cycle states in which the run is still going.
RUNNING_LIFE_CYCLE = frozenset(
    {"QUEUED", "PENDING", "RUNNING", "TERMINATING", "BLOCKED", "WAITING_FOR_RETRY"}
)
#: Life-cycle states in which the run is over (then the result decides).
FINAL_LIFE_CYCLE = frozenset({"TERMINATED", "SKIPPED", "INTERNAL_ERROR"})

#: result_state → code (OK: success).
RESULT_CODES: Mapping[str, Code] = {
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

#: API 2.2 status.termination_details.code → code, used when result_state is absent.
#: Every value Databricks documents is listed, so a failure says what kind it is.
TERMINATION_CODES: Mapping[str, Code] = {
    "SUCCESS": Code.OK,
    "SUCCESS_WITH_FAILURES": Code.OK,
    "CANCELED": Code.CANCELLED,
    "USER_CANCELED": Code.CANCELLED,
    "SKIPPED": Code.FAILED_PRECONDITION,
    "DISABLED": Code.FAILED_PRECONDITION,
    "FEATURE_DISABLED": Code.FAILED_PRECONDITION,
    "BREAKING_CHANGE": Code.FAILED_PRECONDITION,
    "REPOSITORY_CHECKOUT_FAILED": Code.FAILED_PRECONDITION,
    "LIBRARY_INSTALLATION_ERROR": Code.FAILED_PRECONDITION,
    "INVALID_RUN_CONFIGURATION": Code.INVALID_ARGUMENT,
    "INVALID_CLUSTER_REQUEST": Code.INVALID_ARGUMENT,
    "RESOURCE_NOT_FOUND": Code.NOT_FOUND,
    "UNAUTHORIZED_ERROR": Code.PERMISSION_DENIED,
    "STORAGE_ACCESS_ERROR": Code.PERMISSION_DENIED,
    "MAX_CONCURRENT_RUNS_EXCEEDED": Code.RESOURCE_EXHAUSTED,
    "MAX_JOB_QUEUE_SIZE_EXCEEDED": Code.RESOURCE_EXHAUSTED,
    "MAX_SPARK_CONTEXTS_EXCEEDED": Code.RESOURCE_EXHAUSTED,
    "WORKSPACE_RUN_LIMIT_EXCEEDED": Code.RESOURCE_EXHAUSTED,
    "CLUSTER_REQUEST_LIMIT_EXCEEDED": Code.RESOURCE_EXHAUSTED,
    "BUDGET_POLICY_LIMIT_EXCEEDED": Code.RESOURCE_EXHAUSTED,
    "RUN_EXECUTION_ERROR": Code.UNKNOWN,
    "DRIVER_ERROR": Code.UNKNOWN,
    "CLUSTER_ERROR": Code.UNKNOWN,
    "CLOUD_FAILURE": Code.UNKNOWN,
    "INTERNAL_ERROR": Code.UNKNOWN,
}


def judge_run(run: Mapping[str, Any]) -> Verdict:
    """Judge a runs/get body (API 2.1 or 2.2)."""
    state = run.get("state") or {}
    life_cycle = str(state.get("life_cycle_state") or "")
    result = str(state.get("result_state") or "")
    status = run.get("status") or {}
    status_state = str(status.get("state") or "")
    if life_cycle in RUNNING_LIFE_CYCLE or (not life_cycle and status_state != "TERMINATED"):
        if life_cycle == "" and status_state == "":
            _log.warning("run %s has no state yet; treating it as pending", run.get("run_id"))
        return PENDING
    if life_cycle not in FINAL_LIFE_CYCLE and life_cycle:
        _log.warning(
            "run %s is in unknown state %r; treating it as pending", run.get("run_id"), life_cycle
        )
        return PENDING
    message = str(state.get("state_message") or "")
    if life_cycle == "INTERNAL_ERROR":
        return Verdict(True, Code.UNKNOWN, _failure_message(run, message, "internal error"))
    if result:
        code = RESULT_CODES.get(result)
        if code is None:
            _log.warning(
                "run %s ended with unknown result %r; treating it as pending",
                run.get("run_id"),
                result,
            )
            return PENDING
    else:
        details = status.get("termination_details") or {}
        term = str(details.get("code") or "")
        message = message or str(details.get("message") or "")
        if life_cycle == "SKIPPED" and not term:
            code = Code.FAILED_PRECONDITION
        elif term in TERMINATION_CODES:
            code = TERMINATION_CODES[term]
        elif term:
            code = Code.UNKNOWN
        else:
            _log.warning("run %s ended without a result; treating it as pending", run.get("run_id"))
            return PENDING
    if code == Code.OK:
        return Verdict(True, Code.OK, message)
    return Verdict(True, code, _failure_message(run, message, (result or life_cycle).lower()))


def _failure_message(run: Mapping[str, Any], message: str, fallback: str) -> str:
    """The most precise message: the failing task's own words when the run's are generic."""
    for task in run.get("tasks") or []:
        task_state = task.get("state") or {}
        if task_state.get("result_state") in ("FAILED", "TIMEDOUT") or (
            task_state.get("life_cycle_state") == "INTERNAL_ERROR"
        ):
            task_message = task_state.get("state_message") or ""
            if task_message:
                return f"task {task.get('task_key', '?')} failed: {task_message}"
    return message or f"run ended: {fallback}"


def progress_percent(run: Mapping[str, Any]) -> int:
    """Share of the run's tasks that are over, 0-100."""
    tasks = run.get("tasks") or []
    if not tasks:
        life_cycle = (run.get("state") or {}).get("life_cycle_state")
        return 100 if life_cycle in FINAL_LIFE_CYCLE else 0
    finished = sum(
        1 for t in tasks if (t.get("state") or {}).get("life_cycle_state") in FINAL_LIFE_CYCLE
    )
    return finished * 100 // len(tasks)
