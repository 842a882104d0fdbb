"""What SQLite's errors mean to the store: transient or not, and another process's lock.

:func:`translate` is the one place where a ``sqlite3`` exception becomes a core error.

:class:`BusyRetry` waits for another process's lock without blocking the event loop.

The SQLite store runs its statements on the event loop (a point read costs microseconds, a
thread hop ~120 µs). SQLite's own busy handler would make a statement that meets another
process's lock (a backup, a second replica's transaction) *sleep inside the call*, and
with it every coroutine of the server: reads, health checks, everything. So the store's
connection has no busy handler (``busy_timeout`` 0): a statement that meets the lock fails
at once with SQLITE_BUSY, and :class:`BusyRetry` awaits the injected sleep and tries again,
backing off, until the configured busy timeout is spent; then the call fails with
Unavailable (reason ``STORE_BUSY``). Other coroutines run in the meantime.

Every attempt is a whole, synchronous unit of work (a statement, or a transaction that
rolls back on failure), so trying again is always safe. The fast path (no lock met) costs
one ``try``.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from lro_server.core.errors import Internal, LroError, Origin, Unavailable

_T = TypeVar("_T")

#: First pause after SQLITE_BUSY, seconds; doubled after each attempt up to MAX_PAUSE.
FIRST_PAUSE = 0.001
#: Longest pause between two attempts, seconds (SQLite's own handler ends at 0.1).
MAX_PAUSE = 0.05


# Primary result codes (the low byte of an extended code) of conditions outside this
# process that a later attempt may not meet: another process's lock, I/O trouble, a full
# disk. Anything else (a malformed file, a bug in our SQL) is Internal.
_TRANSIENT = {
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_PROTOCOL,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_NOMEM,
}


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Turn sqlite3 exceptions into core errors (see :func:`translate`)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translate(exc) from exc


def translate(exc: sqlite3.Error) -> LroError:
    """The core error of a sqlite3 exception: the one place where that is decided."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(exc, sqlite3.OperationalError) and (code is None or code & 0xFF in _TRANSIENT):
        return Unavailable(f"the SQLite store is unavailable: {exc}", origin=Origin.STORE)
    return Internal(f"SQLite store failure: {exc}", origin=Origin.STORE)


def is_busy(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says another connection holds a lock this statement needs."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


class BusyRetry:
    """Runs an attempt again while it meets another process's lock.

    Args:
        sleep: Awaited between attempts (the store's clock's ``sleep``).
        timeout: Seconds of pauses after which a busy call fails with Unavailable.
    """

    def __init__(self, sleep: Callable[[float], Awaitable[None]], timeout: float) -> None:
        if timeout < 0:
            raise ValueError("the busy timeout must not be negative")
        self._sleep = sleep
        self.timeout = timeout
        #: Attempts that met a lock so far (for tests and metrics).
        self.busy_attempts = 0

    async def after_busy(self, busy: sqlite3.Error, attempt: Callable[..., _T], *args: Any) -> _T:
        """Run ``attempt(*args)`` again, after a pause, until it does not meet a lock.

        Called once a first attempt raised ``busy`` (SQLITE_BUSY). Other sqlite3 errors
        propagate.

        Raises:
            Unavailable: Still busy once ``timeout`` seconds of pauses are spent.
        """
        waited, pause = 0.0, FIRST_PAUSE
        while True:
            self.busy_attempts += 1
            pause = min(pause, self.timeout - waited)
            if pause <= 0:
                raise Unavailable(
                    "the SQLite store is busy: another process held its lock for longer "
                    f"than the busy timeout ({self.timeout:g}s)",
                    reason="STORE_BUSY",
                    origin=Origin.STORE,
                ) from busy
            await self._sleep(pause)
            waited += pause
            pause = min(pause * 2, MAX_PAUSE)
            try:
                return attempt(*args)
            except sqlite3.Error as exc:
                if not is_busy(exc):
                    raise
                busy = exc
