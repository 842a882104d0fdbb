"""SpannerLeases: the Spanner store's leases (claim, release, count), on a thread of their own.

Claiming selects candidates through the small ``OperationsClaimable`` index (only
unfinished operations are in it) and leases them, in one transaction. Claiming and
releasing do not change ``version``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lro_server.core.clock import Clock, to_micros
from lro_server.core.record import OperationRecord
from lro_server.core.store import check_claim, lease_expiry
from lro_server.storage.spanner_calls import SpannerCalls
from lro_server.storage.spanner_sql import (
    CLAIMABLE,
    HOLDERS,
    LEASE,
    RELEASE,
    param_types_of,
    record_from_row,
)


class SpannerLeases:
    """The lease methods of :class:`~lro_server.storage.spanner.SpannerStore`.

    Args:
        calls: The store's calls (leases run on their ``leases`` pool).
        clock: Source of lease expiry.
    """

    def __init__(self, calls: SpannerCalls, clock: Clock) -> None:
        self._calls = calls
        self._clock = clock

    async def claim(self, holder: str, lease_seconds: float, limit: int) -> list[OperationRecord]:
        """Lease up to ``limit`` unfinished operations to ``holder`` for ``lease_seconds``.

        Renews the holder's own leases first, then takes operations whose lease expired
        (or that never had one). Returns the claimed records, oldest first.
        """
        check_claim(holder, lease_seconds)
        if limit <= 0:
            return []
        now = to_micros(self._clock.now())
        expire = lease_expiry(now, lease_seconds)
        claimed = await self._calls.run(
            self._claim, holder, now, expire, limit, pool=self._calls.leases
        )
        claimed.sort(key=lambda r: (r.create_time_us, r.name))
        return claimed

    async def release(self, holder: str, names: Sequence[str]) -> None:
        """End ``holder``'s leases on ``names``; others' leases and unknown names are ignored."""
        if names:
            await self._calls.run(self._release, holder, list(names), pool=self._calls.leases)

    async def holders(self) -> dict[str, int]:
        """Unfinished operations by live lease holder ("" for nobody)."""
        now = to_micros(self._clock.now())
        return await self._calls.run(self._holders, now, pool=self._calls.leases)

    # --- on the lease thread ---------------------------------------------------------------

    def _claim(self, holder: str, now: int, expire: int, limit: int) -> list[OperationRecord]:
        select = {"holder": holder, "now": now, "limit": limit}
        rows = self._calls.rows

        def attempt(txn: Any) -> list[OperationRecord]:
            keys = [row[0] for row in rows(txn, CLAIMABLE, select)]
            if not keys:
                return []
            lease = {"holder": holder, "expire": expire, "keys": keys}
            return [record_from_row(row) for row in rows(txn, LEASE, lease)]

        return self._calls.transaction(attempt)

    def _release(self, holder: str, names: Sequence[str]) -> None:
        params = {"holder": holder, "names": list(names)}
        timeout = self._calls.timeout

        def attempt(txn: Any) -> None:
            txn.execute_update(
                RELEASE, params=params, param_types=param_types_of(params), timeout=timeout
            )

        self._calls.transaction(attempt)

    def _holders(self, now: int) -> dict[str, int]:
        rows = self._calls.snapshot_rows(HOLDERS, {"now": now})
        return {str(holder): int(count) for holder, count in rows}
