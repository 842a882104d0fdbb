"""Databricks cluster state → verdict: pure tables, tested over every compute.State value.

A cluster operation has a goal state: RUNNING (create, start, restart, resize, edit of a
running cluster), TERMINATED (delete, edit of a terminated cluster) or CANCELLED (after
CancelOperation terminated it). ERROR, or TERMINATED while the goal is RUNNING, is a failure
whose code follows the termination reason's type; a state this server does not know is
pending, never success.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from lro_server.core.errors import Code
from lro_server.databricks.family import PENDING, Verdict
from lro_server.databricks.states import TERMINATION_TYPE_CODES, Outcome, lookup, verdict

_log = logging.getLogger(__name__)

P, S, F = Outcome.PENDING, Outcome.SUCCESS, Outcome.FAILURE

#: Goal → cluster state → outcome. Every value of compute.State appears in every row.
TABLE: Mapping[str, Mapping[str, Outcome]] = {
    "RUNNING": {
        "PENDING": P,
        "RESTARTING": P,
        "RESIZING": P,
        "TERMINATING": P,  # becomes TERMINATED: the failure is judged then, with its reason
        "UNKNOWN": P,
        "RUNNING": S,
        "TERMINATED": F,
        "ERROR": F,
    },
    "TERMINATED": {
        "PENDING": P,
        "RESTARTING": P,
        "RESIZING": P,
        "TERMINATING": P,
        "UNKNOWN": P,
        "RUNNING": P,
        "TERMINATED": S,
        "ERROR": F,
    },
    # After CancelOperation sent clusters/delete: TERMINATED confirms the cancellation.
    "CANCELLED": {
        "PENDING": P,
        "RESTARTING": P,
        "RESIZING": P,
        "TERMINATING": P,
        "UNKNOWN": P,
        "RUNNING": P,
        "TERMINATED": F,
        "ERROR": F,
    },
}

#: Termination codes whose meaning beats their type's.
TERMINATION_CODE_CODES: Mapping[str, Code] = {
    "USER_REQUEST": Code.CANCELLED,
}


def failure_code(cluster: Mapping[str, Any]) -> Code:
    """Code of a failed cluster operation, from its termination reason."""
    reason = cluster.get("termination_reason") or {}
    code = TERMINATION_CODE_CODES.get(str(reason.get("code") or ""))
    if code is not None:
        return code
    return TERMINATION_TYPE_CODES.get(str(reason.get("type") or ""), Code.UNKNOWN)


def failure_message(cluster: Mapping[str, Any]) -> str:
    """Databricks' words for why the cluster failed: state message, else termination reason."""
    reason = cluster.get("termination_reason") or {}
    parameters = reason.get("parameters") or {}
    message = str(cluster.get("state_message") or "")
    detail = str(parameters.get("databricks_error_message") or "")
    if not message:
        message = detail
    code = str(reason.get("code") or "")
    if code and code not in message:
        message = f"{message} ({code})" if message else code
    return message or f"cluster is {cluster.get('state', 'in an unknown state')}"


def judge_cluster(cluster: Mapping[str, Any], goal: str) -> Verdict:
    """Judge a clusters/get body against ``goal`` (RUNNING, TERMINATED or CANCELLED).

    Databricks moves a cluster out of TERMINATED (or RUNNING) as it accepts a start, restart,
    resize or edit, so the state read after the call is the action's, not a leftover.
    """
    state = str(cluster.get("state") or "")
    what = f"cluster {cluster.get('cluster_id', '?')}"
    outcome = lookup(TABLE[goal], state, _log, what)
    if outcome is Outcome.PENDING:
        return PENDING
    if goal == "CANCELLED" and state == "TERMINATED":
        return Verdict(True, Code.CANCELLED, failure_message(cluster))
    if outcome is Outcome.SUCCESS:
        return verdict(outcome, Code.OK, str(cluster.get("state_message") or ""))
    return verdict(outcome, failure_code(cluster), failure_message(cluster))
