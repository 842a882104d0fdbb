"""ReadCache: a bounded LRU of records, valid for one version of the data it was filled from.

The owner keeps it consistent: it passes the data's current version on every lookup (the
cache empties itself when that version moved) and drops the entries of every record it
writes itself. Records are immutable values, so a hit hands out the cached object itself.
"""

from __future__ import annotations

from collections import OrderedDict

from lro_server.core.record import OperationRecord

#: Records kept at most.
DEFAULT_ENTRIES = 10_000
#: Estimated bytes kept at most (serialized operation, work and checkpoint of each record).
DEFAULT_BYTES = 64 * 1024 * 1024


class ReadCache:
    """Name → record, least recently used evicted first, emptied when the data changes.

    Args:
        entries: Records kept at most; 0 keeps none.
        max_bytes: Sum of the records' estimated sizes kept at most; a record larger than
            a sixteenth of it is never kept.
    """

    def __init__(self, entries: int = DEFAULT_ENTRIES, max_bytes: int = DEFAULT_BYTES) -> None:
        self.entries = entries
        self.max_bytes = max_bytes
        self._records: OrderedDict[str, tuple[OperationRecord, int]] = OrderedDict()
        self._bytes = 0
        self._version: object = None
        #: Lookups answered so far (lro_store_read_cache_hits_total).
        self.hits = 0

    def __len__(self) -> int:
        return len(self._records)

    @property
    def size_bytes(self) -> int:
        """Sum of the estimated sizes of the records kept."""
        return self._bytes

    def get(self, name: str, version: object) -> OperationRecord | None:
        """The record kept for ``name`` if the data is still at ``version``, else None.

        A ``version`` other than the one the cache was filled under empties it first.
        """
        if version != self._version:
            self.clear()
            self._version = version
            return None
        entry = self._records.get(name)
        if entry is None:
            return None
        self._records.move_to_end(name)
        self.hits += 1
        return entry[0]

    def put(self, record: OperationRecord, size: int) -> None:
        """Keep ``record`` (read at or after the version of the last :meth:`get`)."""
        if self.entries <= 0 or size > self.max_bytes // 16:
            return
        name = record.name
        self.discard(name)
        self._records[name] = (record, size)
        self._bytes += size
        while len(self._records) > self.entries or self._bytes > self.max_bytes:
            _, (_, evicted) = self._records.popitem(last=False)
            self._bytes -= evicted

    def discard(self, name: str) -> None:
        """Forget ``name`` (it is being written)."""
        entry = self._records.pop(name, None)
        if entry is not None:
            self._bytes -= entry[1]

    def clear(self) -> None:
        """Forget everything."""
        self._records.clear()
        self._bytes = 0
