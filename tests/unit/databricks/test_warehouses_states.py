"""SQL warehouse state → verdict, table-style over every value of sql.State."""

from __future__ import annotations

import logging

import pytest
from databricks.sdk.service import sql

from lro_server.core.errors import Code
from lro_server.databricks.family import PENDING
from lro_server.databricks.warehouses_states import TABLE, judge_warehouse

STATES = [m.value for m in sql.State]
GOALS = ["RUNNING", "STOPPED", "CANCELLED"]
EXPECTED = {
    "STARTING": ("pending", "pending", "pending"),
    "RUNNING": ("success", "pending", "pending"),
    "STOPPING": ("pending", "pending", "pending"),
    "STOPPED": ("failure", "success", "cancelled"),
    "DELETING": ("pending", "pending", "pending"),
    "DELETED": ("failure", "failure", "cancelled"),
}


def _kind(warehouse: dict[str, object], goal: str) -> str:
    verdict = judge_warehouse(warehouse, goal)
    if not verdict.done:
        return "pending"
    if verdict.code == Code.CANCELLED:
        return "cancelled"
    return "success" if verdict.succeeded else "failure"


def test_every_sdk_state_is_in_every_goal_and_in_the_expectations():
    for goal, row in TABLE.items():
        assert sorted(set(STATES) - set(row)) == [], goal
    assert sorted(set(STATES) ^ set(EXPECTED)) == []


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("goal", GOALS)
def test_state_outcome(state: str, goal: str) -> None:
    assert _kind({"id": "w", "state": state}, goal) == EXPECTED[state][GOALS.index(goal)]


def test_health_status_values_are_known():
    # The health status is shown, never judged; keep the docs' list in step with the SDK.
    assert {m.value for m in sql.Status} == {"HEALTHY", "DEGRADED", "FAILED"}


@pytest.mark.parametrize("goal", GOALS)
def test_unknown_state_is_pending_with_a_warning(goal, caplog):
    with caplog.at_level(logging.WARNING):
        assert judge_warehouse({"id": "w", "state": "PAUSED"}, goal) is PENDING
    assert "PAUSED" in caplog.text


def test_stopped_while_starting_fails_with_the_health_summary():
    warehouse = {
        "state": "STOPPED",
        "health": {
            "status": "FAILED",
            "summary": "Cluster failed to start.",
            "failure_reason": {"code": "CLOUD_PROVIDER_LAUNCH_FAILURE", "type": "CLOUD_FAILURE"},
        },
    }
    verdict = judge_warehouse(warehouse, "RUNNING")
    assert verdict.code == Code.UNAVAILABLE
    assert verdict.message == "Cluster failed to start. (CLOUD_PROVIDER_LAUNCH_FAILURE)"


def test_deleted_is_not_found():
    assert judge_warehouse({"state": "DELETED"}, "RUNNING").code == Code.NOT_FOUND
