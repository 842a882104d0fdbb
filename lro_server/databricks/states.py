"""Shared vocabulary of the per-family state tables: outcomes and their verdicts."""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping

from lro_server.core.errors import Code
from lro_server.databricks.family import PENDING, Verdict


class Outcome(enum.Enum):
    """What one Databricks state means for an operation."""

    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"


#: Cluster / warehouse termination (or failure) type → code of the failed operation.
TERMINATION_TYPE_CODES: Mapping[str, Code] = {
    "CLIENT_ERROR": Code.FAILED_PRECONDITION,
    "CLOUD_FAILURE": Code.UNAVAILABLE,
    "SERVICE_FAULT": Code.INTERNAL,
    # Ended normally (inactivity, another user's request) while we waited for it to run.
    "SUCCESS": Code.ABORTED,
}


def lookup(table: Mapping[str, Outcome], state: str, log: logging.Logger, what: str) -> Outcome:
    """The outcome of ``state``; unknown (or missing) states are pending, with a warning."""
    outcome = table.get(state)
    if outcome is None:
        log.warning("%s is in state %r, unknown here; treating it as pending", what, state)
        return Outcome.PENDING
    return outcome


def verdict(outcome: Outcome, code: Code, message: str) -> Verdict:
    """The verdict of an outcome (``code`` and ``message`` matter for failures)."""
    if outcome is Outcome.PENDING:
        return PENDING
    if outcome is Outcome.SUCCESS:
        return Verdict(True, Code.OK, message)
    return Verdict(True, code, message)
