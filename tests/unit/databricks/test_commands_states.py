"""Command status / result type → verdict, over compute.CommandStatus, ResultType and
ContextStatus."""

from __future__ import annotations

import logging

import pytest
from databricks.sdk.service import compute

from lro_server.core.errors import Code
from lro_server.databricks.commands_states import (
    CONTEXT_TABLE,
    RESULT_TABLE,
    STATUS_TABLE,
    judge_command,
    judge_context,
)
from lro_server.databricks.family import PENDING
from lro_server.databricks.states import Outcome

STATUSES = [m.value for m in compute.CommandStatus]
RESULT_TYPES = [m.value for m in compute.ResultType]
CONTEXT_STATUSES = [m.value for m in compute.ContextStatus]


def test_every_sdk_value_is_in_the_tables():
    assert sorted(set(STATUSES) - set(STATUS_TABLE)) == []
    assert sorted(set(RESULT_TYPES) - set(RESULT_TABLE)) == []
    assert sorted(set(CONTEXT_STATUSES) - set(CONTEXT_TABLE)) == []


@pytest.mark.parametrize("status", STATUSES)
def test_status(status: str) -> None:
    verdict = judge_command({"id": "c", "status": status, "results": {"resultType": "text"}})
    expected = {"Finished": Code.OK, "Cancelled": Code.CANCELLED, "Error": Code.UNKNOWN}
    if status in expected:
        assert verdict.done and verdict.code == expected[status]
    else:
        assert verdict is PENDING


@pytest.mark.parametrize("result_type", RESULT_TYPES)
def test_finished_is_judged_by_its_result(result_type: str) -> None:
    results = {"resultType": result_type, "summary": "boom", "cause": "Traceback: boom"}
    verdict = judge_command({"status": "Finished", "results": results})
    assert verdict.done
    assert verdict.succeeded == (result_type != "error")


def test_error_result_carries_its_summary_without_markup():
    results = {
        "resultType": "error",
        "summary": "<span class='ansi-red-fg'>ZeroDivisionError</span>: division by zero",
        "cause": "Traceback (most recent call last): ...",
    }
    verdict = judge_command({"status": "Finished", "results": results})
    assert verdict.code == Code.UNKNOWN
    assert verdict.message == "ZeroDivisionError: division by zero"


def test_error_result_without_summary_carries_its_cause():
    results = {"resultType": "error", "cause": "java.lang.OutOfMemoryError"}
    verdict = judge_command({"status": "Finished", "results": results})
    assert verdict.message == "java.lang.OutOfMemoryError"


@pytest.mark.parametrize("status", CONTEXT_STATUSES)
def test_context_status(status: str) -> None:
    expected = {"Pending": Outcome.PENDING, "Running": Outcome.SUCCESS, "Error": Outcome.FAILURE}
    assert judge_context({"status": status}) == expected[status]


def test_unknown_values_are_pending_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        assert judge_command({"status": "Paused"}) is PENDING
        assert judge_command({"status": "Finished", "results": {"resultType": "audio"}}) is PENDING
        assert judge_context({"status": "Sleeping"}) is Outcome.PENDING
    assert "Paused" in caplog.text and "audio" in caplog.text
