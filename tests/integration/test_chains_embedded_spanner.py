"""RunChain with the embedded waiter again, with the server on Spanner (the emulator).

Checkpoints, the compare-and-set of every resume, the waits recovered at a restart and the
child's state mirrored into the parent all go through the Spanner store here. Same tests,
same google-api-core client; only the ``store_url`` fixture differs.
"""

from __future__ import annotations

import pytest
from test_chains_embedded import (  # noqa: F401 - collected here a second time, on Spanner
    chains,
    test_cancel_parent_cancels_running_child_and_stops,
    test_failing_first_step_fails_parent_and_never_starts_second,
    test_parent_metadata_shows_the_running_steps_databricks_state,
    test_restart_while_parent_waits,
    test_two_step_chain_returns_typed_result,
)

pytestmark = pytest.mark.spanner


@pytest.fixture
def store_url(spanner_database_url: str) -> str:
    """A fresh emulator database with the schema, instead of a SQLite file."""
    return spanner_database_url
