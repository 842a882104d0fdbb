"""Counts the server's components keep anyway, exposed as metrics read at scrape time."""

from __future__ import annotations

from lro_server.core.metrics import Metrics
from lro_server.core.notify import Notifier
from lro_server.core.store import OperationStore
from lro_server.core.supervisor import Supervisor
from lro_server.databricks.client import Databricks
from lro_server.databricks.tracker import Tracker
from lro_server.storage import SqliteStore


def expose_samples(
    metrics: Metrics,
    *,
    tracker: Tracker,
    databricks: Databricks,
    notifier: Notifier,
    supervisor: Supervisor,
    store: OperationStore,
) -> None:
    """Register the samples with ``metrics``: read when scraped, free on the hot path.

    ``store`` is the backend itself (not its wrappers): the SQLite store's read-cache hits
    are counted where they happen, GetOperation's among them, which asks the store's
    memory without a store call (``OperationStore.cached``).
    """
    if isinstance(store, SqliteStore):
        read_cache = store.read_cache
        metrics.sample(
            "lro_store_read_cache_hits",
            "Reads the SQLite store answered from its read cache.",
            lambda: read_cache.hits,
            counter=True,
        )
    metrics.sample(
        "lro_tracker_polls",
        "Polls of Databricks entities.",
        lambda: tracker.polls,
        counter=True,
    )
    metrics.sample(
        "lro_tracker_tracked_operations",
        "Operations this replica's tracker follows.",
        lambda: len(tracker.schedule.names()),
        counter=False,
    )
    metrics.sample(
        "lro_databricks_rate_limit_waits",
        "Times a Databricks call had to wait for the workspace rate limiter.",
        lambda: databricks.limiter.waits,
        counter=True,
    )
    metrics.sample(
        "lro_wait_operation_waiters",
        "WaitOperation calls held right now.",
        lambda: notifier.waiters,
        counter=False,
    )
    metrics.sample(
        "lro_background_loop_restarts",
        "Times a background loop died and was started again.",
        lambda: supervisor.restarts,
        counter=True,
    )
    metrics.sample(
        "lro_background_loops_down",
        "Background loops that died and wait to be started again.",
        lambda: len(supervisor.down),
        counter=False,
    )
