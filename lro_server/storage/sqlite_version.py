"""DataVersion: whether another connection has committed to the SQLite file, cheaply.

``PRAGMA data_version`` answers exactly (it moves when another connection committed since
this one last looked, never for this connection's own commits), but it opens a read
transaction, and in WAL mode that takes and releases a shared lock on the wal-index: two
``fcntl`` system calls. Alone that is ~3 µs; on a loaded two-core machine it cost 25-30 µs
per HTTP GetOperation, a fifth of the whole call (docs/performance.md).

Readers of a WAL database find the newest snapshot in the wal-index header, the first bytes
of the ``-shm`` file that every connection maps into memory, and read it without any lock
(https://www.sqlite.org/walformat.html, "the WAL-index header", for the unix VFS). Every
commit rewrites that header and moves its change counter (``iChange``). So while the
header's first copy (48 bytes) is byte for byte what it was when data_version was last
asked, nobody has committed and that answer still holds; only when the bytes moved does
this ask SQLite again. The header is read before the PRAGMA, so the bytes kept are never
newer than the answer kept with them: a commit in between moves them again.

Without a ``-shm`` file to map (an in-memory database, a journal mode other than WAL, a
file system that refused the mapping) every call asks SQLite, as before.

The mapping cannot shrink under us: SQLite truncates the ``-shm`` file only when it opens
it with no other connection attached, and this store's connection stays attached until it
closes (after :meth:`DataVersion.close`).
"""

from __future__ import annotations

import mmap
import sqlite3

#: Bytes of the wal-index header's first copy (``WalIndexHdr``), at the start of ``-shm``.
HEADER_BYTES = 48
_DATA_VERSION = "PRAGMA data_version"


class DataVersion:
    """The data_version of one connection's database, asked of SQLite only when it may move.

    Args:
        conn: The connection (in WAL mode for the fast path).
        shm_path: The database's ``-shm`` file, or None when there is none to watch.
    """

    def __init__(self, conn: sqlite3.Connection, shm_path: str | None) -> None:
        # One cursor kept: ~1 µs less per check than a new one each time.
        self._cursor = conn.cursor()
        self._header: mmap.mmap | None = _map_header(shm_path) if shm_path else None
        self._seen = b""
        self._version = 0
        #: Times SQLite was asked (for tests and benchmarks).
        self.checks = 0

    @property
    def watching(self) -> bool:
        """Whether unchanged wal-index headers spare the PRAGMA."""
        return self._header is not None

    def current(self) -> int:
        """data_version now: moved since the last call iff another connection committed."""
        seen = b""
        if self._header is not None:
            seen = self._header[:HEADER_BYTES]
            if seen == self._seen:
                return self._version
        self.checks += 1
        (version,) = self._cursor.execute(_DATA_VERSION).fetchone()
        self._seen, self._version = seen, int(version)
        return self._version

    def close(self) -> None:
        """Release the mapping (before the connection closes). Idempotent."""
        if self._header is not None:
            self._header.close()
            self._header = None


def _map_header(shm_path: str) -> mmap.mmap | None:
    try:
        with open(shm_path, "rb") as shm:
            return mmap.mmap(shm.fileno(), HEADER_BYTES, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # missing, empty or not mappable: ask SQLite every time
        return None
