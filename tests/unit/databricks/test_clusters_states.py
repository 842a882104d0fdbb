"""Cluster state → verdict, table-style over every value of compute.State."""

from __future__ import annotations

import logging

import pytest
from databricks.sdk.service import compute

from lro_server.core.errors import Code
from lro_server.databricks.clusters_states import TABLE, judge_cluster
from lro_server.databricks.family import PENDING

STATES = [m.value for m in compute.State]
EXPECTED = {
    # state: (goal RUNNING, goal TERMINATED, goal CANCELLED)
    "PENDING": ("pending", "pending", "pending"),
    "RESTARTING": ("pending", "pending", "pending"),
    "RESIZING": ("pending", "pending", "pending"),
    "TERMINATING": ("pending", "pending", "pending"),
    "UNKNOWN": ("pending", "pending", "pending"),
    "RUNNING": ("success", "pending", "pending"),
    "TERMINATED": ("failure", "success", "cancelled"),
    "ERROR": ("failure", "failure", "failure"),
}


def _kind(cluster: dict[str, object], goal: str) -> str:
    verdict = judge_cluster(cluster, goal)
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
@pytest.mark.parametrize("goal", ["RUNNING", "TERMINATED", "CANCELLED"])
def test_state_outcome(state: str, goal: str) -> None:
    expected = EXPECTED[state][["RUNNING", "TERMINATED", "CANCELLED"].index(goal)]
    assert _kind({"cluster_id": "c", "state": state}, goal) == expected


@pytest.mark.parametrize("goal", ["RUNNING", "TERMINATED", "CANCELLED"])
def test_unknown_or_missing_state_is_pending_with_a_warning(goal, caplog):
    with caplog.at_level(logging.WARNING):
        assert judge_cluster({"cluster_id": "c", "state": "HIBERNATING"}, goal) is PENDING
        assert judge_cluster({"cluster_id": "c"}, goal) is PENDING
    assert "HIBERNATING" in caplog.text


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ({"code": "CLOUD_PROVIDER_LAUNCH_FAILURE", "type": "CLOUD_FAILURE"}, Code.UNAVAILABLE),
        ({"code": "INVALID_ARGUMENT", "type": "CLIENT_ERROR"}, Code.FAILED_PRECONDITION),
        ({"code": "DRIVER_UNREACHABLE", "type": "SERVICE_FAULT"}, Code.INTERNAL),
        ({"code": "INACTIVITY", "type": "SUCCESS"}, Code.ABORTED),
        ({"code": "USER_REQUEST", "type": "SUCCESS"}, Code.CANCELLED),
        ({}, Code.UNKNOWN),
    ],
)
def test_terminated_while_starting_fails_by_termination_reason(reason, code):
    cluster = {
        "cluster_id": "c",
        "state": "TERMINATED",
        "state_message": "no capacity",
        "termination_reason": reason,
    }
    verdict = judge_cluster(cluster, "RUNNING")
    assert verdict.done and verdict.code == code
    assert verdict.message.startswith("no capacity")


def test_failure_message_names_the_termination_code():
    cluster = {
        "state": "TERMINATED",
        "termination_reason": {
            "code": "CLOUD_PROVIDER_LAUNCH_FAILURE",
            "type": "CLOUD_FAILURE",
            "parameters": {"databricks_error_message": "no i3.xlarge left"},
        },
    }
    message = judge_cluster(cluster, "RUNNING").message
    assert message == "no i3.xlarge left (CLOUD_PROVIDER_LAUNCH_FAILURE)"
