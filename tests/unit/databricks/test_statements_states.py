"""Statement states → verdicts, over every value of the SDK's sql.StatementState."""

from __future__ import annotations

import pytest
from databricks.sdk.service import sql

from lro_server.core.errors import Code
from lro_server.databricks.statements_states import TABLE, judge_statement


def test_every_sdk_state_is_in_the_table() -> None:
    assert {s.value for s in sql.StatementState} == set(TABLE)


@pytest.mark.parametrize(
    ("state", "done", "code"),
    [
        ("PENDING", False, Code.OK),
        ("RUNNING", False, Code.OK),
        ("SUCCEEDED", True, Code.OK),
        ("CLOSED", True, Code.OK),
        ("FAILED", True, Code.INVALID_ARGUMENT),
        ("CANCELED", True, Code.CANCELLED),
        ("SOMETHING_NEW", False, Code.OK),
    ],
)
def test_judge(state: str, done: bool, code: Code) -> None:
    verdict = judge_statement(state, "BAD_REQUEST", "[TABLE_OR_VIEW_NOT_FOUND] no table")
    assert verdict.done is done
    if done:
        assert verdict.code == code


def test_a_failure_keeps_databricks_message() -> None:
    verdict = judge_statement("FAILED", "", "[DIVIDE_BY_ZERO] Division by zero.")
    assert verdict.code == Code.UNKNOWN and verdict.message == "[DIVIDE_BY_ZERO] Division by zero."
