"""Durable methods end to end again, with the server on Spanner (the emulator).

The journal rows (interleaved in Operations), every commit's compare-and-set with its
events, the promise resolved over HTTP and the waits recovered at a restart all go
through the Spanner store here. Same tests; only the ``store_url`` fixture differs.
"""

from __future__ import annotations

import pytest
from test_durable_e2e import (  # noqa: F401 - collected here a second time, on Spanner
    dchannel,
    dserver,
    ops,
    test_a_caught_failure_is_followed_by_a_recovery_call,
    test_a_journal_mismatch_fails_with_failed_precondition,
    test_a_step_runs_once_across_a_restart_after_it_was_recorded,
    test_an_uncaught_failure_fails_the_method_with_the_childs_error,
    test_cancel_cancels_the_running_children_then_the_method,
    test_duplicate_and_concurrent_resumes_change_nothing,
    test_fan_out_with_gather_returns_both_runs,
    test_the_notebook_resolves_the_promise_over_http_then_the_email_is_sent,
    test_the_timeout_fails_the_method_and_cancels_its_children,
)

pytestmark = pytest.mark.spanner


@pytest.fixture
def store_url(spanner_database_url: str) -> str:
    """A fresh emulator database with the schema, instead of a SQLite file."""
    return spanner_database_url
