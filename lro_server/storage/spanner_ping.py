"""SpannerPing: one cheap query that answers, or fails, within a short deadline.

Readiness follows the store through pings (``api/health.py``), so a ping must fail soon
after Spanner stops answering and succeed soon after it answers again. A ping through the
ordinary read path does neither: before each read the session pool checks its session
with a GetSession call that the client library retries for up to 30 s, with pauses that
start at 0.25 s and grow by 1.3 each time, so a ping during an outage hangs, holding a
worker thread, and the first one after the outage may still be sleeping between two
retries.

This ping runs its query (``SELECT 1 FROM Operations LIMIT 1``: the table is there) as
one ExecuteSql call on a session of its own, with its own retry: short pauses, and a
deadline of ``timeout`` seconds for the whole ping, session creation included. It runs
on the store's worker threads like every Spanner call; one at a time.
"""

from __future__ import annotations

import threading
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core import retry as retries

from lro_server.core.errors import Unavailable

#: Default deadline of one ping, seconds: a query of one row answers in milliseconds.
DEFAULT_PING_TIMEOUT = 1.0
# Pauses between the attempts of one ping (connection refused, UNAVAILABLE): short, since
# the whole ping has only ``timeout`` seconds.
_FIRST_PAUSE, _MAX_PAUSE = 0.05, 0.25


class SpannerPing:
    """Pings one database (call it on a worker thread).

    Args:
        database: The ``google.cloud.spanner`` Database of the store.
        sql: The query to run.
        timeout: Deadline of one ping in seconds.
    """

    def __init__(self, database: Any, sql: str, timeout: float = DEFAULT_PING_TIMEOUT) -> None:
        self._db = database
        self._sql = sql
        self.timeout = timeout
        self._session: str | None = None
        self._lock = threading.Lock()

    def __call__(self, timeout: float | None = None) -> None:
        """Run the query once; Spanner's exceptions propagate (the store translates them).

        Args:
            timeout: Deadline of this ping instead of the default (e.g. a generous one when
                the store opens, which may wait for credentials first).

        Raises:
            Unavailable: The previous ping still runs past this one's deadline.
        """
        deadline = self.timeout if timeout is None else timeout
        if not self._lock.acquire(timeout=deadline):
            raise Unavailable("Spanner did not answer the previous ping in time")
        try:
            retry = retries.Retry(
                predicate=retries.if_exception_type(gexc.ServiceUnavailable),
                initial=_FIRST_PAUSE,
                maximum=_MAX_PAUSE,
                multiplier=2,
                timeout=deadline,
            )
            try:
                self._query(retry, deadline)
            except gexc.NotFound as exc:
                if "session" not in str(exc).lower():
                    raise
                # Expired (an hour idle) or gone with a restarted backend: open another.
                self._session = None
                self._query(retry, deadline)
        finally:
            self._lock.release()

    def _query(self, retry: retries.Retry, timeout: float) -> None:
        api = self._db.spanner_api
        metadata = [("google-cloud-resource-prefix", self._db.name)]
        if self._session is None:
            session = api.create_session(
                request={"database": self._db.name},
                retry=retry,
                timeout=timeout,
                metadata=metadata,
            )
            self._session = str(session.name)
        api.execute_sql(
            request={"session": self._session, "sql": self._sql},
            retry=retry,
            timeout=timeout,
            metadata=metadata,
        )
