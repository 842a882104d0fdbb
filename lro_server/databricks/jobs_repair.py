"""Repair on failure: when a failed run qualifies under its policy, and the repair itself.

Exactly once, across crashes: the decision to repair is stored first (a
:class:`~lro_server.databricks.work.RepairAttempt` without a repair id, holding the run's
latest repair id at that moment); only a later poll calls ``runs/repair``, with that id as
``latest_repair_id``. If the server dies between the call and recording its answer, the
next poll reads the run's repair history, finds a repair newer than the one noted, and
adopts it; and Databricks itself refuses a second repair naming a stale
``latest_repair_id``. The repair reruns every failed task (``rerun_all_failed_tasks``) and
sends no parameters, so Databricks reuses the run's own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from lro_server.core.errors import Code
from lro_server.databricks.client import Databricks
from lro_server.databricks.family import Verdict
from lro_server.databricks.jobs_output import API, end_state, failed
from lro_server.databricks.work import RepairAttempt, Work


def repairs_of(run: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The repairs in the run's history, oldest first; needs ``include_history``."""
    return [h for h in run.get("repair_history") or [] if h.get("type") == "REPAIR"]


def latest_repair_id(run: Mapping[str, Any]) -> int:
    """Id of the run's latest repair (0: never repaired); needs ``include_history``."""
    repairs = repairs_of(run)
    return int(repairs[-1].get("id") or 0) if repairs else 0


def termination_type(run: Mapping[str, Any]) -> str:
    """The run's ``status.termination_details.type`` ("" when absent)."""
    details = (run.get("status") or {}).get("termination_details") or {}
    return str(details.get("type") or "")


def qualifies(work: Work, run: Mapping[str, Any], verdict: Verdict) -> bool:
    """Whether a finished run is repaired under the work's policy (never a cancellation,
    a timeout of the operation, a cancel the caller asked for, or a run without a failed
    task)."""
    policy = work.repair
    if policy is None or not verdict.done or verdict.succeeded:
        return False
    if verdict.code == Code.CANCELLED or work.cancel_requested:
        return False
    if sum(1 for a in work.repairs if a.repair_id) >= policy.max_repairs:
        return False
    if not any(failed(task) for task in run.get("tasks") or []):
        return False  # nothing to rerun (Databricks would refuse the repair)
    return not policy.termination_types or termination_type(run) in policy.termination_types


def with_outcome(work: Work, run: Mapping[str, Any]) -> tuple[RepairAttempt, ...]:
    """The attempts with the outcome of the last confirmed one set from the ended run."""
    if not work.repairs or work.pending_repair is not None or work.repairs[-1].result_state:
        return work.repairs
    last = dataclasses.replace(work.repairs[-1], result_state=end_state(run))
    return (*work.repairs[:-1], last)


def intend(work: Work, run: Mapping[str, Any], now_us: int) -> tuple[RepairAttempt, ...]:
    """The attempts with a new intended repair (after the policy's delay)."""
    policy = work.repair
    assert policy is not None
    intent = RepairAttempt(
        after_repair_id=latest_repair_id(run),
        not_before_us=now_us + int(policy.delay_seconds * 1e6),
        termination_type=termination_type(run),
        failed_result=end_state(run),
    )
    return (*with_outcome(work, run), intent)


async def repair(dbx: Databricks, work: Work, now_us: int) -> tuple[RepairAttempt, ...]:
    """Carry out the intended repair: adopt one made since the intent, or ask for it.

    Returns the attempts with the last one confirmed (its repair id set).
    """
    intent = work.pending_repair
    assert intent is not None
    run_id = work.ids.run_id
    run = await dbx.call(
        "GET", f"{API}/runs/get", query={"run_id": run_id, "include_history": "true"}
    )
    latest = latest_repair_id(run)
    rerun = tuple(str(t.get("task_key") or "") for t in run.get("tasks") or [] if failed(t))
    if latest != intent.after_repair_id:
        repair_id = latest  # made before a crash, never recorded: adopt it
    else:
        body: dict[str, Any] = {"run_id": run_id, "rerun_all_failed_tasks": True}
        if latest:
            body["latest_repair_id"] = latest
        answer = await dbx.call("POST", f"{API}/runs/repair", body=body, idempotent=False)
        repair_id = int(answer["repair_id"])
    done = dataclasses.replace(
        intent, repair_id=repair_id, rerun_tasks=rerun, repair_time_us=now_us
    )
    return (*work.repairs[:-1], done)
