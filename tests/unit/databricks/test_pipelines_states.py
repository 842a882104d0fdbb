"""Pipeline update / pipeline state → verdict, over every value of the SDK's enums."""

from __future__ import annotations

import logging

import pytest
from databricks.sdk.service import pipelines

from lro_server.core.errors import Code
from lro_server.databricks.family import PENDING
from lro_server.databricks.pipelines_states import (
    STOP_TABLE,
    UPDATE_TABLE,
    judge_stop,
    judge_update,
)

UPDATE_STATES = [m.value for m in pipelines.UpdateInfoState]
UPDATE_STATE_INFO = [m.value for m in pipelines.UpdateStateInfoState]
PIPELINE_STATES = [m.value for m in pipelines.PipelineState]

UPDATE_EXPECTED = {"COMPLETED": Code.OK, "FAILED": Code.UNKNOWN, "CANCELED": Code.CANCELLED}
STOP_EXPECTED = {"IDLE": Code.OK, "FAILED": Code.FAILED_PRECONDITION, "DELETED": Code.NOT_FOUND}


def test_every_sdk_value_is_in_the_tables():
    assert sorted(set(UPDATE_STATES + UPDATE_STATE_INFO) - set(UPDATE_TABLE)) == []
    assert sorted(set(PIPELINE_STATES) - set(STOP_TABLE)) == []


@pytest.mark.parametrize("state", UPDATE_STATES)
def test_update_state(state: str) -> None:
    verdict = judge_update(state, "why")
    if state in UPDATE_EXPECTED:
        assert verdict.done and verdict.code == UPDATE_EXPECTED[state]
    else:
        assert verdict is PENDING


@pytest.mark.parametrize("state", PIPELINE_STATES)
def test_stop_state(state: str) -> None:
    verdict = judge_stop(state, "")
    if state in STOP_EXPECTED:
        assert verdict.done and verdict.code == STOP_EXPECTED[state]
    else:
        assert verdict is PENDING


def test_failed_update_keeps_the_message():
    assert judge_update("FAILED", "Table not found: raw.sales").message == (
        "Table not found: raw.sales"
    )


def test_unknown_values_are_pending_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        assert judge_update("PAUSED", "") is PENDING
        assert judge_stop("HIBERNATING", "") is PENDING
    assert "PAUSED" in caplog.text and "HIBERNATING" in caplog.text
