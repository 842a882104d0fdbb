"""Delta Live Tables update and pipeline state → verdict: pure tables over the SDK's enums.

StartUpdate is judged by the update's state (pipelines.UpdateInfoState): COMPLETED is
success, FAILED a failure, CANCELED is CANCELLED. Stop is judged by the pipeline's state
(pipelines.PipelineState): IDLE is success. States this server does not know are pending.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from lro_server.core.errors import Code
from lro_server.databricks.family import PENDING, Verdict
from lro_server.databricks.states import Outcome, lookup, verdict

_log = logging.getLogger(__name__)

P, S, F = Outcome.PENDING, Outcome.SUCCESS, Outcome.FAILURE

#: Update state → outcome (every value of pipelines.UpdateInfoState).
UPDATE_TABLE: Mapping[str, Outcome] = {
    "CREATED": P,
    "QUEUED": P,
    "INITIALIZING": P,
    "RESETTING": P,
    "SETTING_UP_TABLES": P,
    "WAITING_FOR_RESOURCES": P,
    "RUNNING": P,
    "STOPPING": P,
    "COMPLETED": S,
    "FAILED": F,
    "CANCELED": F,
}
#: Code of each failed update state.
UPDATE_CODES: Mapping[str, Code] = {"FAILED": Code.UNKNOWN, "CANCELED": Code.CANCELLED}

#: Pipeline state → outcome of a Stop (every value of pipelines.PipelineState).
STOP_TABLE: Mapping[str, Outcome] = {
    "DEPLOYING": P,
    "STARTING": P,
    "RUNNING": P,
    "RECOVERING": P,
    "RESETTING": P,
    "STOPPING": P,
    "IDLE": S,
    "FAILED": F,
    "DELETED": F,
}
#: Code of each state in which a Stop cannot end well.
STOP_CODES: Mapping[str, Code] = {"FAILED": Code.FAILED_PRECONDITION, "DELETED": Code.NOT_FOUND}


def judge_update(state: str, message: str, *, what: str = "update") -> Verdict:
    """Judge a pipeline update's state; ``message`` explains a failure."""
    outcome = lookup(UPDATE_TABLE, state, _log, what)
    if outcome is Outcome.PENDING:
        return PENDING
    code = UPDATE_CODES.get(state, Code.UNKNOWN)
    fallback = f"pipeline update {state.lower()}"
    return verdict(outcome, code, message or ("" if outcome is Outcome.SUCCESS else fallback))


def judge_stop(state: str, message: str, *, what: str = "pipeline") -> Verdict:
    """Judge a pipeline's state after a Stop."""
    outcome = lookup(STOP_TABLE, state, _log, what)
    if outcome is Outcome.PENDING:
        return PENDING
    code = STOP_CODES.get(state, Code.UNKNOWN)
    fallback = f"pipeline is {state}"
    return verdict(outcome, code, message or ("" if outcome is Outcome.SUCCESS else fallback))
