"""Expiry: deleting done operations older than the retention, in bounded batches.

Spanner deletes expired rows itself (the table's row deletion policy); on the other stores
a supervised sweep calls :meth:`Expiry.sweep` every ``interval`` seconds, and operators run
``lro-server purge --older-than DURATION``. Both walk the store's done operations oldest
first (:meth:`~lro_server.core.store.OperationStore.expired`, an index of done ones) and
delete at most ``limit`` per sweep, so one sweep costs a bounded amount whatever is kept.

Never deleted: an unfinished operation (``expired`` lists done ones only, and a done
operation never changes again), and a done child whose parent is still unfinished (a chain
step, a durable method's child: its parent will read it when it resumes). ``parent_of``
names a record's parent; a child whose parent is gone or done goes like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from lro_server.core.clock import Clock, to_micros
from lro_server.core.errors import NotFound
from lro_server.core.record import OperationRecord
from lro_server.core.store import ExpiryCursor, OperationStore

_log = logging.getLogger(__name__)

#: Records read per store call of a sweep.
BATCH = 200
#: Default most deletions of one sweep.
SWEEP_LIMIT = 2000
#: Seconds in a day.
DAY = 86400.0


def _no_parent(record: OperationRecord) -> str | None:
    return None


class Expiry:
    """Deletes done operations last changed before a cutoff.

    Args:
        store: The operation store.
        clock: Wall time the cutoff is computed from.
        parent_of: The name of a record's parent operation (None: it has none).
    """

    def __init__(
        self,
        store: OperationStore,
        clock: Clock,
        parent_of: Callable[[OperationRecord], str | None] = _no_parent,
    ) -> None:
        self._store = store
        self._clock = clock
        self._parent_of = parent_of
        #: Operations deleted so far.
        self.deleted = 0

    async def purge(self, older_than_seconds: float, *, limit: int = SWEEP_LIMIT) -> int:
        """Delete up to ``limit`` done operations unchanged for ``older_than_seconds``;
        return how many were deleted."""
        before = to_micros(self._clock.now()) - int(older_than_seconds * 1e6)
        deleted = 0
        after: ExpiryCursor | None = None
        while deleted < limit:
            batch = await self._store.expired(before, after, min(BATCH, limit - deleted))
            if not batch:
                break
            for record in batch:
                if await self._parent_unfinished(record):
                    continue
                try:
                    await self._store.delete(record.name)
                except NotFound:
                    continue  # deleted meanwhile (DeleteOperation, another replica)
                deleted += 1
            last = batch[-1]
            after = (last.update_time_us, last.name)
        self.deleted += deleted
        if deleted:
            _log.info("purged %d done operations older than %gs", deleted, older_than_seconds)
        return deleted

    async def _parent_unfinished(self, record: OperationRecord) -> bool:
        parent = self._parent_of(record)
        if not parent:
            return False
        try:
            return not (await self._store.get(parent)).done
        except NotFound:
            return False

    async def run(self, retention_days: float, interval_seconds: float) -> None:
        """Sweep every ``interval_seconds``, forever (run it under the supervisor)."""
        while True:
            await self.purge(retention_days * DAY)
            await self._clock.sleep(interval_seconds)
