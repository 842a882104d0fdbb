"""The tracker's bookkeeping: options, per-operation poll schedule, metadata helpers."""

from __future__ import annotations

import dataclasses
import heapq
import math
import time
from collections.abc import Callable

from google.protobuf import any_pb2, symbol_database
from google.protobuf.message import Message


@dataclasses.dataclass(frozen=True, slots=True)
class TrackerOptions:
    """Tunables of the tracker (from settings).

    Attributes:
        holder: This replica's name in leases.
        lease_seconds: Length of a lease; renewed every third of it.
        poll_interval_seconds: First interval between two polls of one entity.
        max_poll_interval_seconds: Intervals back off up to this while nothing changes.
        first_poll_seconds: Delay of the first poll after a start.
        backoff: Factor applied to the interval after an unchanged poll.
        claim_limit: Most operations one replica tracks.
        concurrency: Most polls in flight at once.
        pseudo_holders: Lease holders that are not replicas (resumable methods' waits are
            leased to one for good): not counted when replicas share the work.
    """

    holder: str
    lease_seconds: float = 30.0
    poll_interval_seconds: float = 5.0
    max_poll_interval_seconds: float = 60.0
    first_poll_seconds: float = 1.0
    backoff: float = 1.5
    claim_limit: int = 10000
    concurrency: int = 64
    pseudo_holders: frozenset[str] = frozenset()


@dataclasses.dataclass(slots=True)
class _Entry:
    due: float
    interval: float
    busy: bool = False
    alone: bool = False  # poll it by itself (not in a batch) the next time it is due
    poked: bool = False  # poked since its current poll began


class Schedule:
    """When each tracked operation is polled next. Times are ``clock()`` seconds.

    Due times sit in a heap, so a wake-up of the tracker costs a heap pop per operation due
    instead of a scan of every tracked one (a replica tracks up to ``claim_limit``, 10,000,
    and wakes after every poll). An item ``(due, name)`` counts only while ``name`` is
    tracked, idle, and still due then; other items are stale, dropped when they surface,
    and the heap is rebuilt from the entries when stale items outnumber live ones.

    Args:
        options: Poll intervals and back-off.
        clock: Monotonic seconds (``time.monotonic``; tests pass their own).
    """

    def __init__(
        self, options: TrackerOptions, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._options = options
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[float, str]] = []

    def names(self) -> list[str]:
        """Every tracked operation."""
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def add(self, name: str, *, delay: float) -> None:
        """Track ``name`` (if new) and poll it within ``delay`` seconds."""
        due = self._clock() + delay
        entry = self._entries.get(name)
        if entry is None:
            entry = self._entries[name] = _Entry(due, self._options.poll_interval_seconds)
        elif due < entry.due:
            entry.due = due
        else:
            return
        self._push(name, entry)

    def poke(self, name: str, *, alone: bool = False) -> bool:
        """Poll ``name`` at once; False if it is not tracked here.

        ``alone``: by itself, not waiting for its family's next batch (a cancel to send).
        A poke that arrives while ``name`` is being polled makes the next poll follow at
        once (see :meth:`backoff`).
        """
        entry = self._entries.get(name)
        if entry is None:
            return False
        entry.due = 0.0
        entry.interval = self._options.poll_interval_seconds
        entry.alone = entry.alone or alone
        entry.poked = True
        self._push(name, entry)
        return True

    def idle(self, names: list[str]) -> list[str]:
        """Those of ``names`` tracked here and not being polled now."""
        return [n for n in names if n in self._entries and not self._entries[n].busy]

    def take_alone(self, name: str) -> bool:
        """Whether ``name`` was poked to be polled by itself (the flag is cleared)."""
        entry = self._entries.get(name)
        if entry is None or not entry.alone:
            return False
        entry.alone = False
        return True

    def drop(self, name: str) -> None:
        """Stop tracking ``name``."""
        self._entries.pop(name, None)

    def keep_only(self, claimed: set[str]) -> None:
        """After a claim: track what was claimed, forget what another replica took."""
        for name in list(self._entries):
            if name not in claimed and not self._entries[name].busy:
                del self._entries[name]
        for name in claimed:
            if name not in self._entries:
                entry = self._entries[name] = _Entry(0.0, self._options.poll_interval_seconds)
                self._push(name, entry)

    def due(self, now: float) -> list[str]:
        """Operations to poll now; they are marked busy until :meth:`finished`."""
        heap, ready = self._heap, []
        while heap and heap[0][0] <= now:
            due, name = heapq.heappop(heap)
            if self._current(due, name):
                entry = self._entries[name]
                entry.busy = True
                entry.poked = False
                ready.append(name)
        return ready

    def take(self, names: list[str]) -> list[str]:
        """Mark the idle ones of ``names`` busy (polled along with a batch); return them."""
        taken = self.idle(names)
        for name in taken:
            entry = self._entries[name]
            entry.busy = True
            entry.poked = False
        return taken

    def finished(self, name: str) -> None:
        """A poll of ``name`` is over."""
        entry = self._entries.get(name)
        if entry is not None and entry.busy:
            entry.busy = False
            self._push(name, entry)

    def backoff(self, name: str, *, changed: bool) -> None:
        """Schedule the next poll: reset the interval after a change, else back off."""
        entry = self._entries.get(name)
        if entry is None:
            return
        options = self._options
        if changed:
            entry.interval = options.poll_interval_seconds
        else:
            entry.interval = min(
                entry.interval * options.backoff, options.max_poll_interval_seconds
            )
        # Poked while this poll ran: what the poke is about may have come after the poll
        # read the record, so poll again at once.
        now = self._clock()
        entry.due = now if entry.poked else now + entry.interval
        entry.poked = False
        self._push(name, entry)

    def next_due(self) -> float:
        """Earliest due time of an idle entry (inf when none)."""
        heap = self._heap
        while heap:
            due, name = heap[0]
            if self._current(due, name):
                return due
            heapq.heappop(heap)
        return math.inf

    def _current(self, due: float, name: str) -> bool:
        """Whether the heap item ``(due, name)`` still stands for an idle, due entry."""
        entry = self._entries.get(name)
        return entry is not None and not entry.busy and entry.due == due

    def _push(self, name: str, entry: _Entry) -> None:
        if entry.busy:
            return  # finished() pushes it with the due time it has then
        heapq.heappush(self._heap, (entry.due, name))
        if len(self._heap) > 2 * len(self._entries) + 64:
            self._heap = [(e.due, n) for n, e in self._entries.items() if not e.busy]
            heapq.heapify(self._heap)


def unpack_metadata(packed: any_pb2.Any) -> Message | None:
    """Decode operation metadata into its registered message type (None if unknown)."""
    if not packed.type_url:
        return None
    full_name = packed.type_url.rsplit("/", 1)[-1]
    try:
        cls = symbol_database.Default().GetSymbol(full_name)
    except KeyError:
        return None
    message: Message = cls()
    packed.Unpack(message)
    return message


def differs(before: Message | None, after: Message) -> bool:
    """Whether metadata changed, ignoring its ``update_time``."""
    if before is None or type(before) is not type(after):
        return True
    a, b = type(after)(), type(after)()
    a.CopyFrom(before)
    b.CopyFrom(after)
    for message in (a, b):
        if "update_time" in message.DESCRIPTOR.fields_by_name:
            message.ClearField("update_time")
    return a != b
