"""SqliteConnection: the SQLite store's one connection to its file, used from the event loop.

Opening checks the SQLite library, sets the pragmas (WAL, ``synchronous=NORMAL``, a larger
page cache) and brings the schema up to date. Several processes may share one file:
everything that must be atomic across them runs in one ``BEGIN IMMEDIATE`` transaction
(:meth:`SqliteConnection.write`, which takes SQLite's write lock up front). Waiting for
another process's lock never blocks the loop: the connection has no busy handler, and an
attempt that meets the lock is tried again after awaited pauses for up to ``busy_timeout``
seconds, then fails with Unavailable (:mod:`lro_server.storage.sqlite_errors`). Reads
rarely meet a lock at all (WAL readers do not wait for writers).

An attempt is one synchronous call that does its whole work without awaiting, so it can be
repeated as it is; :meth:`SqliteConnection.attempt` runs it with ``sqlite3`` exceptions
translated by ``sqlite_errors.translate``, nowhere else.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from lro_server.core.clock import Clock
from lro_server.core.errors import FailedPrecondition, Unavailable
from lro_server.storage import sqlite_schema as schema
from lro_server.storage.sqlite_errors import BusyRetry, is_busy, translate, translated

_T = TypeVar("_T")

#: Default wait for another process's write lock before a call fails with Unavailable.
DEFAULT_BUSY_TIMEOUT = 2.0
#: SQLite page cache per connection, KiB (its default, 2 MiB, holds ~500 pages).
CACHE_KIB = 64 * 1024
#: Oldest SQLite library with everything used here (``UPDATE ... RETURNING``: 3.35).
MIN_SQLITE_VERSION = (3, 35, 0)


class SqliteConnection:
    """One connection to a store's SQLite file, used only from the event loop's thread.

    Args:
        path: Database file (created with its schema if missing) or ``":memory:"``.
        clock: Its ``sleep`` paces the attempts that meet another process's lock.
        busy_timeout: Seconds to wait for another process's lock before Unavailable.

    Raises:
        Unavailable: The file cannot be opened.
        FailedPrecondition: The file has a schema newer than this code, or the SQLite
            library is older than :data:`MIN_SQLITE_VERSION`.
    """

    def __init__(self, path: str, clock: Clock, busy_timeout: float) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
            raise FailedPrecondition(
                f"SQLite {sqlite3.sqlite_version} is too old; the SQLite store needs "
                f"{'.'.join(map(str, MIN_SQLITE_VERSION))} or newer"
            )
        self.closed = False
        #: Waits out another process's lock (its counters are for tests and metrics).
        self.busy = BusyRetry(clock.sleep, busy_timeout)
        with translated():
            # check_same_thread=False only lets close() run from a shutdown thread; all
            # calls happen on the loop thread. isolation_level=None: we issue BEGIN ourselves.
            # Only opening waits for another process's lock; calls never do (sqlite_errors).
            conn = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            try:
                (journal,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                # Durable across process crashes; a power cut may lose the last commits.
                conn.execute("PRAGMA synchronous = NORMAL")
                # A page cache of up to CACHE_KIB (default 2 MiB): with 100,000 operations
                # a point read otherwise costs two pread() calls; only pages read are kept.
                conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
                changes = schema.migrate(conn)
                conn.execute("PRAGMA busy_timeout = 0")
            except BaseException:
                conn.close()
                raise
        #: The sqlite3 connection (use :meth:`open`, which refuses once closed).
        self.sqlite = conn
        #: The file's wal-index (``-shm``), None unless the file is in WAL mode.
        self.shm_path = f"{path}-shm" if str(journal).lower() == "wal" else None
        #: DDL statements opening applied (a new file gets the whole schema).
        self.schema_changes = changes

    def open(self) -> sqlite3.Connection:
        """The connection, or Unavailable once closed."""
        if self.closed:
            raise Unavailable("the SQLite store is closed", reason="STORE_CLOSED")
        return self.sqlite

    async def attempt(self, attempt: Callable[..., _T], *args: Any) -> _T:
        """``attempt(*args)`` now, or once another process's lock is gone; sqlite3 errors
        translated."""
        try:
            return attempt(*args)
        except sqlite3.Error as exc:
            if not is_busy(exc):
                raise translate(exc) from exc
            busy = exc
        return await self.when_free(busy, attempt, *args)

    async def when_free(self, busy: sqlite3.Error, attempt: Callable[..., _T], *args: Any) -> _T:
        """``attempt(*args)`` again once the lock a first attempt met (``busy``) is gone."""
        try:
            return await self.busy.after_busy(busy, attempt, *args)
        except sqlite3.Error as exc:
            raise translate(exc) from exc

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: commit on success, roll back on any exception."""
        conn = self.open()
        # IMMEDIATE takes the write lock now, so reads inside see what the write will act
        # on, and a busy database fails here rather than at COMMIT.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise

    def close(self) -> None:
        """Close the connection; later attempts raise Unavailable."""
        self.closed = True
        self.sqlite.close()
