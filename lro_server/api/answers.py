"""Serialized operations, kept for the message object they were serialized from.

A polled operation is read again and again, and a store that holds it in memory hands out
the same message object each time until the operation changes (``OperationStore.cached``:
SQLite's read cache). Serializing it again for every GetOperation costs as much as the
rest of the service's work for that call, so the bytes are kept beside the message they
came from and reused while the store hands out that very object: exact by construction,
because a stored record is never changed in place (a write makes a new record and
message), and the kept message cannot be freed and its identity reused while it is kept.
"""

from __future__ import annotations

from collections.abc import Callable

from google.longrunning import operations_pb2

#: Operations kept at most.
DEFAULT_ENTRIES = 10_000
#: Serialized bytes kept at most; an operation larger than a sixteenth of it is never kept.
DEFAULT_BYTES = 64 * 1024 * 1024


class SerializedOperations:
    """Name → (message, its serialized bytes), the oldest entry evicted first.

    Args:
        entries: Operations kept at most; 0 keeps none.
        max_bytes: Sum of the kept bytes at most.
    """

    def __init__(self, entries: int = DEFAULT_ENTRIES, max_bytes: int = DEFAULT_BYTES) -> None:
        self.entries = entries
        self.max_bytes = max_bytes
        self._kept: dict[str, tuple[operations_pb2.Operation, bytes]] = {}
        self._bytes = 0
        #: ``(message, bytes)`` kept for a name, or None; the bytes answer for that very
        #: message only. The dict's own method: a hit costs no call of ours (see ``of``).
        self.get: Callable[[str], tuple[operations_pb2.Operation, bytes] | None] = self._kept.get

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def size_bytes(self) -> int:
        """Sum of the kept bytes."""
        return self._bytes

    def of(self, name: str, operation: operations_pb2.Operation) -> bytes:
        """``operation`` (the store's current message for ``name``) serialized: kept bytes
        if they are ``operation``'s, else serialized now and kept. Callers on a hot path
        check :attr:`get` first, as this does."""
        kept = self._kept.get(name)
        if kept is not None and kept[0] is operation:
            return kept[1]
        data: bytes = operation.SerializeToString()
        if kept is not None:
            del self._kept[name]
            self._bytes -= len(kept[1])
        if self.entries > 0 and len(data) <= self.max_bytes // 16:
            self._kept[name] = (operation, data)
            self._bytes += len(data)
            while len(self._kept) > self.entries or self._bytes > self.max_bytes:
                oldest = next(iter(self._kept))
                self._bytes -= len(self._kept.pop(oldest)[1])
        return data
