"""Batched polling: observe many entities of one family with a few list calls per cycle.

When several operations of a family that can list its entities (a ``BatchFamily``) are due,
the tracker polls them together: it also takes along that family's other idle operations
(they are on the same list pages for free, and polling them together keeps them aligned on
one cadence), asks the family to observe them all through its list endpoint, and writes each
observation. Operations the lists do not show (e.g. a run that just left ``active_only``)
fall back to the family's per-entity read, as do operations that must be started, timed out
or cancelled. Per-entity intervals keep backing off while nothing changes.

The :class:`Batcher` only decides: :meth:`Batcher.groups` says which operations to poll
together, :meth:`Batcher.plan` what to do with each of a group (a :class:`BatchPlan`); the
tracker reads the records and applies the plan.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

from lro_server.core.errors import LroError, Unavailable
from lro_server.core.record import OperationRecord
from lro_server.databricks.client import Databricks
from lro_server.databricks.family import BatchFamily, Family, Observation, Tracked
from lro_server.databricks.tracker_state import Schedule, unpack_metadata
from lro_server.databricks.work import Work

_log = logging.getLogger(__name__)

#: Fewest operations of a family worth one list cycle instead of per-entity reads.
MIN_BATCH = 3


@dataclasses.dataclass(slots=True)
class BatchPlan:
    """What a batched poll found, for the tracker to apply.

    Attributes:
        settle: Observations from the lists, to write.
        individual: Operations to poll one by one (due, and the lists could not answer).
        later: Operations to poll again later (the listing was unavailable).
    """

    settle: list[tuple[OperationRecord, Observation]] = dataclasses.field(default_factory=list)
    individual: list[str] = dataclasses.field(default_factory=list)
    later: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True)
class PollGroup:
    """Operations the tracker polls together.

    Attributes:
        names: The operations (for a walk: those due first, then those taken along).
        walk: The family whose list walk this is; "" for one operation polled alone.
    """

    names: list[str]
    walk: str = ""


class Batcher:
    """Groups due operations by family and observes the groups through list endpoints.

    Each family that can list has at most one walk of its lists in flight, and walks start
    at least ``spacing`` seconds apart: operations that fall due while a walk runs (or
    soon after one started) wait for the next walk, which takes every idle operation of
    the family along. So however their due times spread (a burst of starts spreads them
    over the burst), a family's operations are observed together, once per cadence, and
    the list calls follow the cadence, not the number of due times.

    Args:
        families: Family by name; those that are ``BatchFamily`` are batched.
        schedule: The tracker's schedule (companions of a batch are marked busy in it).
        spacing: Shortest time between the starts of two walks of one family.
        min_batch: Fewest operations of a family worth a list cycle.
    """

    def __init__(
        self,
        families: Mapping[str, Family],
        schedule: Schedule,
        *,
        spacing: float = 0.0,
        min_batch: int = MIN_BATCH,
    ) -> None:
        self._families = families
        self._schedule = schedule
        self._spacing = spacing
        self._min_batch = min_batch
        self._family_of: dict[str, str] = {}
        self._along: set[str] = set()  # taken along in a batch without being due
        self._waiting: dict[str, list[str]] = {}  # due, waiting for their family's walk
        self._walking: set[str] = set()  # families with a walk in flight
        self._last_walk: dict[str, float] = {}  # when each family's latest walk started
        #: Batches observed through list endpoints so far.
        self.batches = 0

    def note(self, records: Iterable[OperationRecord]) -> None:
        """Remember which family each tracked operation belongs to."""
        for record in records:
            self._family_of[record.name] = record.family

    def _batching(self, family: str) -> BatchFamily | None:
        found = self._families.get(family)
        return found if isinstance(found, BatchFamily) else None

    def groups(self, due: list[str], now: float) -> list[PollGroup]:
        """Split due (already busy) operations into polls: singles, and at most one walk
        per family, which takes the family's idle operations along.

        Operations of a family whose walk is in flight, or whose last walk started less
        than ``spacing`` ago, wait for its next walk (they stay busy meanwhile); those
        poked to be polled alone (a cancel to send) never wait.
        """
        schedule = self._schedule
        out: list[PollGroup] = []
        for name in due:
            family = self._family_of.get(name, "")
            if schedule.take_alone(name) or self._batching(family) is None:
                out.append(PollGroup([name]))
            else:
                self._waiting.setdefault(family, []).append(name)
        for family in list(self._waiting):
            if family in self._walking or now < self._next_walk(family):
                continue
            names = self._waiting.pop(family)
            waiting = set(names)
            idle = [
                n
                for n, f in self._family_of.items()
                if f == family and n in schedule and n not in waiting
            ]
            if len(names) + len(idle) < self._min_batch:
                out.extend(PollGroup([n]) for n in names)
                continue
            companions = schedule.take(idle)
            self._along.update(companions)
            self._walking.add(family)
            self._last_walk[family] = now
            out.append(PollGroup(names + companions, walk=family))
        return out

    def _next_walk(self, family: str) -> float:
        return self._last_walk.get(family, -math.inf) + self._spacing

    def next_walk(self) -> float:
        """When the next waiting walk may start (inf: none waits, or each waits for the
        walk in flight to end, which wakes the tracker)."""
        times = [self._next_walk(f) for f in self._waiting if f not in self._walking]
        return min(times, default=math.inf)

    def walk_done(self, family: str) -> None:
        """The walk of ``family`` ended (the tracker then polls what waits for the next)."""
        self._walking.discard(family)

    def prune(self) -> None:
        """Forget the families of operations no longer tracked."""
        self.forget(list(self._family_of))

    def forget(self, names: Iterable[str]) -> None:
        """Drop bookkeeping of operations no longer tracked."""
        for name in names:
            if name not in self._schedule:
                self._family_of.pop(name, None)

    async def plan(
        self,
        dbx: Databricks,
        names: Sequence[str],
        records: Sequence[OperationRecord],
        needs_attention: Callable[[OperationRecord], bool],
    ) -> BatchPlan:
        """Observe one group's unfinished ``records`` (read for ``names``: the first are
        due, the rest along) through the family's lists."""
        along = {n for n in names if n in self._along}
        self._along.difference_update(names)
        family = self._batching(self._family_of.get(names[0], "")) if names else None
        self.forget(names)
        plan = BatchPlan()
        listed: list[OperationRecord] = []
        tracked: list[Tracked] = []
        for record in records:
            metadata = unpack_metadata(record.operation.metadata)
            if metadata is None or needs_attention(record):
                plan.individual.append(record.name)
            else:
                listed.append(record)
                tracked.append((Work.of(record), metadata))
        observations: list[Observation | None] = [None] * len(listed)
        if family is not None and len(listed) >= self._min_batch:
            try:
                observations = await family.observe_many(dbx, tracked)
                self.batches += 1
            except Unavailable as exc:
                _log.info("listing %s failed, will retry: %s", family.name, exc)
                plan.later.extend(record.name for record in listed)
                return plan
            except LroError as exc:
                _log.warning("listing %s failed, reading one by one: %s", family.name, exc)
        for record, observation in zip(listed, observations, strict=True):
            if observation is not None:
                plan.settle.append((record, observation))
            elif record.name not in along:  # due, and not on the lists: read it alone
                plan.individual.append(record.name)
        return plan
