"""Batched polling: observe many entities of one family with a few list calls per cycle.

When several operations of a family that can list its entities (a ``BatchFamily``) are due,
the tracker polls them together: it also takes along that family's other idle operations
(they are on the same list pages for free, and polling them together keeps them aligned on
one cadence), asks the family to observe them all through its list endpoint, and writes each
observation. Operations the lists do not show (e.g. a run that just left ``active_only``)
fall back to the family's per-entity read, as do operations that must be started, timed out
or cancelled. Per-entity intervals keep backing off while nothing changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from lro_server.core.errors import LroError, NotFound, Unavailable
from lro_server.core.record import OperationRecord
from lro_server.databricks.family import BatchFamily, Observation, Tracked
from lro_server.databricks.tracker_state import unpack_metadata

if TYPE_CHECKING:
    from lro_server.databricks.tracker import Tracker

_log = logging.getLogger(__name__)

#: Fewest operations of a family worth one list cycle instead of per-entity reads.
MIN_BATCH = 3


class Batcher:
    """Groups due operations by family and polls the groups through list endpoints."""

    def __init__(self, tracker: Tracker, *, min_batch: int = MIN_BATCH) -> None:
        self._tracker = tracker
        self._min_batch = min_batch
        self._family_of: dict[str, str] = {}
        self._along: set[str] = set()  # taken along in a batch without being due
        self.batches = 0

    def note(self, records: Iterable[OperationRecord]) -> None:
        """Remember which family each tracked operation belongs to."""
        for record in records:
            self._family_of[record.name] = str(record.work.get("family"))

    def _batching(self, family: str) -> BatchFamily | None:
        found = self._tracker.families.get(family)
        return found if isinstance(found, BatchFamily) else None

    def groups(self, due: list[str]) -> list[list[str]]:
        """Split due (already busy) operations into polls: singles, and one batch per family.

        A batch also takes the family's other idle operations along.
        """
        schedule = self._tracker.schedule
        by_family: dict[str, list[str]] = {}
        singles: list[list[str]] = []
        for name in due:
            family = self._family_of.get(name, "")
            if self._batching(family) is None:
                singles.append([name])
            else:
                by_family.setdefault(family, []).append(name)
        for family, names in by_family.items():
            known = [n for n, f in self._family_of.items() if f == family and n in schedule]
            idle = [n for n in known if n not in set(names)]
            if len(names) + len(idle) < self._min_batch:
                singles.extend([n] for n in names)
                continue
            companions = schedule.take(idle)
            self._along.update(companions)
            singles.append(names + companions)
        return singles

    def prune(self) -> None:
        """Forget the families of operations no longer tracked."""
        self.forget(list(self._family_of))

    def forget(self, names: Iterable[str]) -> None:
        """Drop bookkeeping of operations no longer tracked."""
        schedule = self._tracker.schedule
        for name in names:
            if name not in schedule:
                self._family_of.pop(name, None)

    async def poll_many(self, names: Sequence[str]) -> None:
        """Poll one family's operations together (the first ones are due, the rest along)."""
        tracker = self._tracker
        records: list[OperationRecord] = []
        for name in names:
            try:
                record = await tracker.store.get(name)
            except NotFound:
                tracker.schedule.drop(name)
                continue
            if record.done:
                tracker.schedule.drop(name)
            else:
                records.append(record)
        along = {n for n in names if n in self._along}
        self._along.difference_update(names)
        family = self._batching(self._family_of.get(names[0], ""))
        self.forget(names)
        individual: list[str] = []
        listed: list[OperationRecord] = []
        tracked: list[Tracked] = []
        for record in records:
            metadata = unpack_metadata(record.operation.metadata)
            if metadata is None or tracker.needs_attention(record):
                individual.append(record.name)
            else:
                listed.append(record)
                tracked.append((record.work, metadata))
        observations: list[Observation | None] = [None] * len(listed)
        if family is not None and len(listed) >= self._min_batch:
            try:
                observations = await family.observe_many(tracker.dbx, tracked)
                self.batches += 1
            except Unavailable as exc:
                _log.info("listing %s failed, will retry: %s", family.name, exc)
                for record in listed:
                    tracker.schedule.backoff(record.name, changed=False)
                listed = []
            except LroError as exc:
                _log.warning("listing %s failed, reading one by one: %s", family.name, exc)
        for record, observation in zip(listed, observations, strict=True):
            if observation is not None:
                await tracker.settle(record, observation)
            elif record.name not in along:  # due, and not on the lists: read it alone
                individual.append(record.name)
        await self._each(individual)

    async def _each(self, names: list[str]) -> None:
        limit = max(1, self._tracker.options.concurrency)
        for start in range(0, len(names), limit):
            chunk = names[start : start + limit]
            results = await asyncio.gather(
                *(self._tracker.poll(n) for n in chunk), return_exceptions=True
            )
            for name, result in zip(chunk, results, strict=True):
                if isinstance(result, Exception):
                    _log.error("%s: poll failed unexpectedly: %r", name, result)
                    self._tracker.schedule.backoff(name, changed=False)
