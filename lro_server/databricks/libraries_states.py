"""Cluster library status → verdict: pure tables over compute.LibraryInstallStatus.

An Install is done when every named library is INSTALLED, SKIPPED or RESTORED; one FAILED
library fails the operation with Databricks' messages. An Uninstall is done when every named
library is gone from the cluster's list or UNINSTALL_ON_RESTART. Unknown statuses are pending.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from lro_server.core.errors import Code
from lro_server.databricks.family import PENDING, Verdict
from lro_server.databricks.states import Outcome, lookup

_log = logging.getLogger(__name__)

P, S, F = Outcome.PENDING, Outcome.SUCCESS, Outcome.FAILURE
#: The status of a library the cluster does not list.
ABSENT = ""

#: Goal → library status → outcome (every value of compute.LibraryInstallStatus, and absent).
TABLE: Mapping[str, Mapping[str, Outcome]] = {
    "install": {
        ABSENT: P,  # not listed yet
        "PENDING": P,
        "RESOLVING": P,
        "INSTALLING": P,
        "INSTALLED": S,
        "SKIPPED": S,  # e.g. already provided by the runtime
        "RESTORED": S,
        "FAILED": F,
        "UNINSTALL_ON_RESTART": F,  # someone removes it: it will not stay installed
    },
    "uninstall": {
        ABSENT: S,
        "UNINSTALL_ON_RESTART": S,
        "PENDING": P,
        "RESOLVING": P,
        "INSTALLING": P,
        "INSTALLED": P,  # until Databricks shows the uninstall
        "SKIPPED": P,
        "RESTORED": P,
        "FAILED": P,
    },
}
#: Code of a failed library operation, by the failing status.
FAILURE_CODES: Mapping[str, Code] = {
    "FAILED": Code.UNKNOWN,
    "UNINSTALL_ON_RESTART": Code.ABORTED,
}


def outcome_of(goal: str, status: str) -> Outcome:
    """Outcome of one library's status for ``goal`` (install or uninstall)."""
    return lookup(TABLE[goal], status, _log, f"library (status for {goal})")


def judge_libraries(
    goal: str, statuses: Sequence[tuple[str, str, Sequence[str]]]
) -> tuple[Verdict, int]:
    """Judge ``(name, status, messages)`` of every named library; also the % settled."""
    outcomes = [outcome_of(goal, status) for _, status, _ in statuses]
    settled = sum(1 for o in outcomes if o is not Outcome.PENDING)
    percent = settled * 100 // len(statuses) if statuses else 100
    failures = [
        (name, status, messages)
        for (name, status, messages), outcome in zip(statuses, outcomes, strict=True)
        if outcome is Outcome.FAILURE
    ]
    if failures:
        parts = []
        for name, status, messages in failures:
            text = "; ".join(m for m in messages if m) or status
            parts.append(f"{name}: {text}")
        code = FAILURE_CODES.get(failures[0][1], Code.UNKNOWN)
        return Verdict(True, code, "library failed: " + " | ".join(parts)), percent
    if all(o is Outcome.SUCCESS for o in outcomes):
        return Verdict(True, Code.OK, ""), percent
    return PENDING, percent
