"""What GetOperation answers from memory with: the name a request's bytes give, and the
serialized operations, kept for the message object they were serialized from.

Clients poll: the same GetOperationRequest bytes arrive again and again, and parsing them
for the name costs more than the rest of finding the answer, so the name the bytes gave
is kept by the bytes (:class:`RequestNames`; the same bytes always parse alike).

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


#: Request bytes whose names are kept at most (then all are forgotten at once).
DEFAULT_NAMES = 10_000
#: Longest request whose name is kept: a request naming an operation is ~50 bytes, and a
#: caller sending large ones (unknown fields) must not fill memory with them.
MAX_KEPT_REQUEST_BYTES = 512


class RequestNames:
    """Serialized request → the ``name`` it parses to, for requests that name an operation.

    Args:
        entries: Names kept at most; beyond, the memo starts again empty (polled requests
            come back at once).
    """

    def __init__(self, entries: int = DEFAULT_NAMES) -> None:
        self.entries = entries
        self._names: dict[bytes, str] = {}
        #: The name ``raw`` parses to, if kept (the dict's own method: asked on every call).
        self.get: Callable[[bytes], str | None] = self._names.get

    def __len__(self) -> int:
        return len(self._names)

    def keep(self, raw: bytes, name: str) -> None:
        """Remember that ``raw`` parses to a request named ``name`` (unless it is longer
        than :data:`MAX_KEPT_REQUEST_BYTES`)."""
        if len(raw) > MAX_KEPT_REQUEST_BYTES or self.entries <= 0:
            return
        if len(self._names) >= self.entries:
            self._names.clear()
        self._names[raw] = name
