"""The Jobs end-to-end flow again, with the server on Spanner (the emulator) instead of SQLite.

Same tests, same google-api-core client; only the ``store_url`` fixture differs.
"""

from __future__ import annotations

import pytest
from test_jobs_e2e import (  # noqa: F401 - collected here a second time, on Spanner
    test_cancel_makes_the_future_cancelled,
    test_failed_run_raises_with_databricks_message,
    test_run_now_success_returns_typed_response,
)

pytestmark = pytest.mark.spanner


@pytest.fixture
def store_url(spanner_database_url: str) -> str:
    """A fresh emulator database with the schema, instead of a SQLite file."""
    return spanner_database_url
