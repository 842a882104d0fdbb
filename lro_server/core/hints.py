"""Push hints: "look at the operations behind this Databricks entity now".

A hint (a Databricks webhook, Hints.Refresh) never carries an outcome: it only makes the
replica that tracks the operation poll it at once instead of at its next scheduled poll,
and that poll reads Databricks. The replica that receives a hint does not know whether it
tracks the operation, so :class:`PushHints` finds the unfinished operations the hint names
and, for each:

* held by this replica (its lease): pokes the local tracker (no store write);
* held by another replica: stamps ``hint_us`` on the record (one compare-and-set); the
  holder sees the newer stamp when it renews its leases (every third of a lease) and polls
  at once. No replica-to-replica call, so no addresses to configure.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from lro_server.core import filter as aip160
from lro_server.core.cas import compare_and_set
from lro_server.core.clock import Clock, to_micros
from lro_server.core.errors import NotFound, OperationDone
from lro_server.core.record import OperationRecord
from lro_server.core.store import ListQuery, OperationStore

_log = logging.getLogger(__name__)

#: Most operations one hint refreshes (one Databricks run is tracked by a few at most).
MAX_PER_HINT = 20


class PushHints:
    """Turns hints about Databricks entities into refreshes on the tracking replica.

    Args:
        store: The operation store.
        holder: This replica's name in leases.
        poke: Polls an operation now if this replica tracks it.
        clock: Time of the ``hint_us`` stamps.
    """

    def __init__(
        self, store: OperationStore, holder: str, poke: Callable[[str], None], clock: Clock
    ) -> None:
        self._store = store
        self._holder = holder
        self._poke = poke
        self._clock = clock
        #: Hints handled so far, by where they went (for tests and metrics).
        self.local = 0
        self.remote = 0

    async def run(self, run_id: int) -> int:
        """Refresh the unfinished operations of job run ``run_id``; return how many."""
        expr = aip160.parse(f"metadata.run_id = {int(run_id)} AND done = false")
        records = await self._store.list(ListQuery(expr, None, None, MAX_PER_HINT))
        for record in records:
            await self._refresh(record)
        return len(records)

    async def _refresh(self, record: OperationRecord) -> None:
        if record.lease_holder == self._holder:
            self.local += 1
            self._poke(record.name)
            return
        now = to_micros(self._clock.now())

        def stamped(fresh: OperationRecord) -> OperationRecord | None:
            if fresh.done or fresh.hint_us >= now:
                return None
            return dataclasses.replace(fresh, hint_us=now)

        try:
            await compare_and_set(self._store, record.name, stamped, current=record)
        except (NotFound, OperationDone):
            return  # deleted or finished meanwhile: nothing to refresh
        self.remote += 1
        # The lease may have come here meanwhile; a poke of an untracked name is a no-op.
        self._poke(record.name)
        _log.info("%s: refresh hint left for %s", record.name, record.lease_holder or "anyone")
