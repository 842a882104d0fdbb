"""Opening the Spanner store: parse its URL, migrate if asked, build the client, ping once."""

from __future__ import annotations

import asyncio
import logging

from lro_server.core.clock import Clock
from lro_server.core.errors import InvalidArgument
from lro_server.storage.spanner import SpannerStore
from lro_server.storage.spanner_calls import DEFAULT_THREADS, DEFAULT_TIMEOUT
from lro_server.storage.spanner_client import open_database, parse_spanner_url
from lro_server.storage.spanner_schema import DEFAULT_RETENTION_DAYS, migrate

_log = logging.getLogger(__name__)


async def open_spanner_store(
    url: str,
    *,
    clock: Clock | None = None,
    threads: int = DEFAULT_THREADS,
    create_schema: bool = False,
    retention_days: int = DEFAULT_RETENTION_DAYS,
    call_timeout: float = DEFAULT_TIMEOUT,
) -> SpannerStore:
    """Open the store on ``spanner://projects/P/instances/I/databases/D``.

    Args:
        url: The database.
        clock: Source of create/update times and lease expiry (system clock by default).
        threads: Thread pool size for Spanner calls (``LRO_SPANNER_THREADS``).
        create_schema: Run :func:`migrate` first (tests and single-replica setups; in
            production run ``lro-server migrate`` once per release instead).
        retention_days: Retention used when ``create_schema`` creates the schema.
        call_timeout: Deadline in seconds of one store call.

    Raises:
        InvalidArgument: The URL is malformed.
        Unavailable: Spanner cannot be reached, or the database or schema is missing
            (the message says to run ``lro-server migrate``).
    """
    parsed = parse_spanner_url(url)
    if threads < 1:
        raise InvalidArgument(f"threads must be at least 1, got {threads}")
    if create_schema:
        await migrate(url, retention_days=retention_days)
    # Finding credentials may ask the metadata server: keep it off the event loop.
    database = await asyncio.to_thread(open_database, parsed, threads)
    store = SpannerStore(parsed, database, clock, threads=threads, timeout=call_timeout)
    try:
        # The first call may wait for credentials: give it a whole call's deadline.
        await store.check(call_timeout)
    except BaseException:
        await store.close()
        raise
    _log.info("opened Spanner store %s", parsed)
    return store
