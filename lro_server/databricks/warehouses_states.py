"""Databricks SQL warehouse state → verdict: pure tables, tested over every sql.State value.

Goals: RUNNING (create, start, edit of a running warehouse), STOPPED (stop, edit of a
stopped one) or CANCELLED (after CancelOperation stopped it). STOPPED or DELETED while the
goal is RUNNING is a failure with the warehouse's health summary; a state this server does
not know is pending, never success.
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

#: Goal → warehouse state → outcome. Every value of sql.State appears in every row.
TABLE: Mapping[str, Mapping[str, Outcome]] = {
    "RUNNING": {
        "STARTING": P,
        "RUNNING": S,
        "STOPPING": P,  # becomes STOPPED: judged then
        "STOPPED": F,
        "DELETING": P,
        "DELETED": F,
    },
    "STOPPED": {
        "STARTING": P,
        "RUNNING": P,
        "STOPPING": P,
        "STOPPED": S,
        "DELETING": P,
        "DELETED": F,
    },
    "CANCELLED": {
        "STARTING": P,
        "RUNNING": P,
        "STOPPING": P,
        "STOPPED": F,
        "DELETING": P,
        "DELETED": F,
    },
}


def health(warehouse: Mapping[str, Any]) -> Mapping[str, Any]:
    """The warehouse's ``health`` object (empty when absent)."""
    value = warehouse.get("health")
    return value if isinstance(value, Mapping) else {}


def failure_message(warehouse: Mapping[str, Any]) -> str:
    """Databricks' words for why the warehouse is not running: its health summary."""
    info = health(warehouse)
    message = str(info.get("summary") or info.get("message") or "")
    reason = info.get("failure_reason") or {}
    code = str(reason.get("code") or "") if isinstance(reason, Mapping) else ""
    if code and code not in message:
        message = f"{message} ({code})" if message else code
    return message or f"warehouse is {warehouse.get('state', 'in an unknown state')}"


def failure_code(warehouse: Mapping[str, Any]) -> Code:
    """Code of a failed warehouse operation."""
    if warehouse.get("state") == "DELETED":
        return Code.NOT_FOUND
    reason = health(warehouse).get("failure_reason") or {}
    kind = str(reason.get("type") or "") if isinstance(reason, Mapping) else ""
    return TERMINATION_TYPE_CODES.get(kind, Code.UNKNOWN)


def judge_warehouse(warehouse: Mapping[str, Any], goal: str) -> Verdict:
    """Judge a warehouses get body against ``goal`` (RUNNING, STOPPED or CANCELLED)."""
    state = str(warehouse.get("state") or "")
    outcome = lookup(TABLE[goal], state, _log, f"warehouse {warehouse.get('id', '?')}")
    if outcome is Outcome.PENDING:
        return PENDING
    if goal == "CANCELLED":
        return Verdict(True, Code.CANCELLED, "warehouse stopped")
    if outcome is Outcome.SUCCESS:
        return verdict(outcome, Code.OK, "")
    return verdict(outcome, failure_code(warehouse), failure_message(warehouse))
