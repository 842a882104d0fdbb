"""Databricks SQL statement state → verdict: a pure table, tested over every
``sql.StatementState`` value.

SUCCEEDED is success; CLOSED is success too (the statement ran; its result is no longer
available, which the response says); FAILED fails with Databricks' message and SQL state;
CANCELED is CANCELLED, also when the statement was cancelled elsewhere. A state this server
does not know is pending, never success.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from lro_server.core.errors import Code
from lro_server.databricks.family import PENDING, Verdict

_log = logging.getLogger(__name__)

#: State → verdict (None: still running).
TABLE: Mapping[str, Verdict | None] = {
    "PENDING": None,
    "RUNNING": None,
    "SUCCEEDED": Verdict(True, Code.OK),
    "CLOSED": Verdict(True, Code.OK, "the result is no longer available"),
    "FAILED": Verdict(True, Code.UNKNOWN, "the statement failed"),
    "CANCELED": Verdict(True, Code.CANCELLED, "the statement was cancelled"),
}

#: Databricks error codes of a failed statement → the operation's code.
ERROR_CODES: Mapping[str, Code] = {
    "BAD_REQUEST": Code.INVALID_ARGUMENT,
    "INVALID_PARAMETER_VALUE": Code.INVALID_ARGUMENT,
    "NOT_FOUND": Code.NOT_FOUND,
    "RESOURCE_DOES_NOT_EXIST": Code.NOT_FOUND,
    "PERMISSION_DENIED": Code.PERMISSION_DENIED,
    "RESOURCE_EXHAUSTED": Code.RESOURCE_EXHAUSTED,
    "DEADLINE_EXCEEDED": Code.DEADLINE_EXCEEDED,
    "TEMPORARILY_UNAVAILABLE": Code.UNAVAILABLE,
    "INTERNAL_ERROR": Code.INTERNAL,
}


def judge_statement(state: str, error_code: str = "", message: str = "") -> Verdict:
    """Judge a statement's ``status.state`` (with its error, when FAILED)."""
    if state not in TABLE:
        _log.warning("statement in unknown state %r; treating it as pending", state)
        return PENDING
    found = TABLE[state]
    if found is None:
        return PENDING
    if state == "FAILED":
        return Verdict(True, ERROR_CODES.get(error_code, Code.UNKNOWN), message or found.message)
    return found
