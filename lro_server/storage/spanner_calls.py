"""SpannerCalls: the Spanner store's calls off the event loop, each within one deadline.

Every Spanner call is blocking network I/O, so each store method runs one synchronous
function on a bounded thread pool and awaits it; the event loop never blocks. Errors are
translated once, by :func:`spanner_client.translated`, around that function. Writes are
read-write transactions through ``Database.run_in_transaction``, which retries ABORTED
itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import random
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from lro_server.core.errors import Unavailable
from lro_server.storage.spanner_client import SpannerUrl, translated
from lro_server.storage.spanner_sql import param_types_of

_T = TypeVar("_T")

#: Default worker threads (and pooled sessions) per store.
DEFAULT_THREADS = 16
#: Default deadline of one store call (a query, or a transaction with its retries).
DEFAULT_TIMEOUT = 30.0
# Seconds to wait before retrying an ABORTED transaction when the server says nothing.
_FALLBACK_RETRY_DELAY = (0.005, 0.05)


class SpannerCalls:
    """Runs a store's Spanner calls on its thread pools.

    Args:
        url: The database (named in errors).
        database: A ``google.cloud.spanner`` Database bound to ``url``.
        threads: Size of the thread pool that runs Spanner calls.
        timeout: Deadline in seconds of one call (a transaction including its retries).
    """

    def __init__(self, url: SpannerUrl, database: Any, threads: int, timeout: float) -> None:
        self.url = url
        self.db = database
        #: Deadline in seconds of one call.
        self.timeout = timeout
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="spanner"
        )
        #: A thread of its own for leases (claim, release, lease_holders): behind a queue
        #: of reads and writes on the pool a renewal could come after the lease ran out.
        self.leases = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="spanner-leases"
        )
        self._closed = False

    async def run(
        self,
        fn: Callable[..., _T],
        /,
        *args: Any,
        pool: concurrent.futures.Executor | None = None,
    ) -> _T:
        """Run ``fn(*args)`` on the pool (or ``pool``), with Spanner errors translated.

        A call unanswered by its deadline fails with Unavailable, even where the client
        library would go on retrying (the session pool's check of a session does, for 30 s).
        """
        if self._closed:
            raise Unavailable("the Spanner store is closed", reason="STORE_CLOSED")
        call = functools.partial(self._translated, fn, *args)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                return await loop.run_in_executor(pool or self._executor, call)
        except TimeoutError as exc:
            raise Unavailable(
                f"Spanner ({self.url.database_path}) did not answer within {self.timeout:g}s"
            ) from exc
        except RuntimeError as exc:
            if self._closed:  # closed while this call was being submitted
                raise Unavailable("the Spanner store is closed", reason="STORE_CLOSED") from exc
            raise

    def _translated(self, fn: Callable[..., _T], /, *args: Any) -> _T:
        with translated(self.url.database_path):
            return fn(*args)

    def transaction(self, fn: Callable[..., _T], /, *args: Any) -> _T:
        """Run ``fn(transaction, *args)`` in a read-write transaction, retried on ABORTED
        (on a worker thread)."""
        # Cloud Spanner attaches RetryInfo to ABORTED and the library waits that long. The
        # emulator attaches none, and the library's fallback (2**attempt seconds) turns
        # every contended write into a stall of seconds, exhausting the call's budget. The
        # jittered fallback below applies only when the server gives no delay.
        result: _T = self.db.run_in_transaction(
            fn,
            *args,
            timeout_secs=self.timeout,
            default_retry_delay=random.uniform(*_FALLBACK_RETRY_DELAY),
        )
        return result

    def rows(self, reader: Any, sql: str, params: Mapping[str, Any]) -> list[Any]:
        """All rows of ``sql`` read by a snapshot or a transaction, within the deadline."""
        return list(
            reader.execute_sql(
                sql, params=dict(params), param_types=param_types_of(params), timeout=self.timeout
            )
        )

    def snapshot_rows(self, sql: str, params: Mapping[str, Any]) -> list[Any]:
        """All rows of ``sql`` in a strong single-use snapshot (on a worker thread)."""
        with self.db.snapshot() as snapshot:
            return self.rows(snapshot, sql, params)

    async def close(self) -> None:
        """Stop the thread pools; later calls raise Unavailable. Idempotent."""
        if not self._closed:
            self._closed = True
            for pool in (self._executor, self.leases):
                await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
