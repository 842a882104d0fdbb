"""Command execution status → verdict: pure tables over compute.CommandStatus/ResultType.

A command is judged by its result, not its life cycle: Finished with resultType "error" is a
failure carrying the result's summary and cause; Cancelled is CANCELLED; Error (the command
could not run) is a failure. The context being created first is judged by ContextStatus.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from lro_server.core.errors import Code
from lro_server.databricks.family import PENDING, Verdict
from lro_server.databricks.states import Outcome, lookup

_log = logging.getLogger(__name__)

P, S, F = Outcome.PENDING, Outcome.SUCCESS, Outcome.FAILURE

#: Command status → outcome (every value of compute.CommandStatus). Finished is then judged
#: by its result type.
STATUS_TABLE: Mapping[str, Outcome] = {
    "Queued": P,
    "Running": P,
    "Cancelling": P,
    "Finished": S,
    "Cancelled": F,
    "Error": F,
}
STATUS_CODES: Mapping[str, Code] = {"Cancelled": Code.CANCELLED, "Error": Code.UNKNOWN}

#: Result type of a Finished command → outcome (every value of compute.ResultType).
RESULT_TABLE: Mapping[str, Outcome] = {
    "text": S,
    "table": S,
    "image": S,
    "images": S,
    "error": F,
}

#: Context status → outcome of waiting for it (every value of compute.ContextStatus).
CONTEXT_TABLE: Mapping[str, Outcome] = {"Pending": P, "Running": S, "Error": F}

#: Longest failure message taken from a result (stack traces can be huge).
MAX_MESSAGE = 2000
#: HTML markup Databricks puts in summaries (e.g. ``<span class='ansi-red-fg'>``).
_MARKUP = re.compile(r"<[^>]+>")


def error_message(results: Mapping[str, Any]) -> str:
    """A failed result's words: its one-line summary (markup removed), else its cause."""
    summary = _MARKUP.sub("", str(results.get("summary") or "")).strip()
    cause = str(results.get("cause") or "").strip()
    return (summary or cause)[:MAX_MESSAGE] or "the command failed"


def judge_command(body: Mapping[str, Any]) -> Verdict:
    """Judge a commands/status body."""
    status = str(body.get("status") or "")
    outcome = lookup(STATUS_TABLE, status, _log, f"command {body.get('id', '?')}")
    if outcome is Outcome.PENDING:
        return PENDING
    results = body.get("results") or {}
    if outcome is Outcome.FAILURE:
        message = error_message(results) if results else f"command {status.lower()}"
        return Verdict(True, STATUS_CODES.get(status, Code.UNKNOWN), message)
    result_type = str(results.get("resultType") or "")
    if not result_type:
        return Verdict(True, Code.OK, "")  # Finished without output (e.g. an assignment)
    result = lookup(RESULT_TABLE, result_type, _log, f"result of command {body.get('id', '?')}")
    if result is Outcome.PENDING:
        return PENDING
    if result is Outcome.FAILURE:
        return Verdict(True, Code.UNKNOWN, error_message(results))
    return Verdict(True, Code.OK, "")


def judge_context(body: Mapping[str, Any]) -> Outcome:
    """Whether a new execution context is ready (SUCCESS), failed, or still pending."""
    return lookup(CONTEXT_TABLE, str(body.get("status") or ""), _log, "execution context")
