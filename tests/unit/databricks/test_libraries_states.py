"""Library status → verdict, over every value of compute.LibraryInstallStatus."""

from __future__ import annotations

import logging

import pytest
from databricks.sdk.service import compute

from lro_server.core.errors import Code
from lro_server.databricks.family import PENDING
from lro_server.databricks.libraries_states import ABSENT, TABLE, judge_libraries, outcome_of
from lro_server.databricks.states import Outcome

STATUSES = [m.value for m in compute.LibraryInstallStatus]
INSTALL = {
    "INSTALLED": Outcome.SUCCESS,
    "SKIPPED": Outcome.SUCCESS,
    "RESTORED": Outcome.SUCCESS,
    "FAILED": Outcome.FAILURE,
    "UNINSTALL_ON_RESTART": Outcome.FAILURE,
}
UNINSTALL = {"UNINSTALL_ON_RESTART": Outcome.SUCCESS, ABSENT: Outcome.SUCCESS}


def test_every_sdk_status_is_in_both_goals():
    for goal, row in TABLE.items():
        assert sorted(set(STATUSES) - set(row)) == [], goal


@pytest.mark.parametrize("status", [*STATUSES, ABSENT])
def test_install_outcome(status: str) -> None:
    assert outcome_of("install", status) == INSTALL.get(status, Outcome.PENDING)


@pytest.mark.parametrize("status", [*STATUSES, ABSENT])
def test_uninstall_outcome(status: str) -> None:
    assert outcome_of("uninstall", status) == UNINSTALL.get(status, Outcome.PENDING)


def test_all_installed_succeeds_with_full_progress():
    verdict, percent = judge_libraries("install", [("a", "INSTALLED", []), ("b", "SKIPPED", [])])
    assert verdict.succeeded and percent == 100


def test_one_failure_fails_with_its_messages():
    verdict, percent = judge_libraries(
        "install",
        [("pypi:a", "INSTALLED", []), ("pypi:b", "FAILED", ["No matching distribution"])],
    )
    assert verdict.done and verdict.code == Code.UNKNOWN
    assert verdict.message == "library failed: pypi:b: No matching distribution"
    assert percent == 100


def test_partly_installed_is_pending_with_progress():
    verdict, percent = judge_libraries("install", [("a", "INSTALLED", []), ("b", "PENDING", [])])
    assert verdict is PENDING and percent == 50


def test_unknown_status_is_pending_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        verdict, _ = judge_libraries("install", [("a", "QUARANTINED", [])])
    assert verdict is PENDING and "QUARANTINED" in caplog.text
