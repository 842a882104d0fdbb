"""The simulator's shared state: lock, clock, ids, call log, created entities, timelines."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .behaviour import RunBehaviour
from .clock import Clock
from .faults import FaultTable
from .routing import Route
from .timeline import Phase, Timeline

__all__ = ["CallRecord", "CreatedEntity", "Family", "World"]


@dataclass(frozen=True)
class CallRecord:
    """One REST call the simulator answered (or dropped).

    Attributes:
        method: The HTTP method.
        path: The path as sent, e.g. ``/api/2.2/jobs/runs/get``.
        route: The path without the ``/api/<version>`` prefix, e.g. ``jobs/runs/get``.
        status: The HTTP status answered (or that would have been, for a dropped call).
        fault: The kind of fault injected into the call, if any.
    """

    method: str
    path: str
    route: str
    status: int
    fault: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Returns the record as a JSON object."""
        return {
            "method": self.method,
            "path": self.path,
            "route": self.route,
            "status": self.status,
            "fault": self.fault,
        }


@dataclass(frozen=True)
class CreatedEntity:
    """An entity a call created (a run, a cluster, an update...), for "created once" asserts.

    Attributes:
        kind: The timeline kind, e.g. ``"runs"`` or ``"clusters"``.
        entity_id: The entity's id as a string.
        attrs: What the creating call said about it, e.g. ``idempotency_token``.
    """

    kind: str
    entity_id: str
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Returns the entity as a JSON object."""
        return {"kind": self.kind, "id": self.entity_id, "attrs": dict(self.attrs)}


class Family(Protocol):
    """A family of REST endpoints (jobs, clusters...) with its own entities."""

    #: Timeline kind → named timelines; each must contain ``"default"`` and ``"hold"``.
    presets: Mapping[str, Mapping[str, Timeline]]

    def routes(self) -> list[Route]:
        """Returns the endpoints of the family."""
        ...

    def reset(self) -> None:
        """Forgets every entity."""
        ...

    def finish(self, kind: str, entity_id: str, phase: Phase) -> None:
        """Moves a (usually held) entity of ``kind`` to ``phase`` now.

        Raises:
            KeyError: No such entity.
        """
        ...


class World:
    """State shared by every family and the control API, guarded by :attr:`lock`.

    The lock is re-entrant and held by every handler for the whole (short, synchronous)
    handling of a call, so control methods called from other threads see consistent state.
    """

    def __init__(self, clock: Clock, seed: int, behaviour: RunBehaviour | None = None) -> None:
        """Creates an empty world reading ``clock``, with randomness seeded by ``seed``.

        ``behaviour`` is how runs without a configured timeline go (command line knobs).
        """
        self.lock = threading.RLock()
        self.clock = clock
        self.seed = seed
        self.behaviour = behaviour or RunBehaviour()
        self.rng = random.Random(seed)
        self.faults = FaultTable(self.rng)
        self.url = "http://127.0.0.1"
        self.families: list[Family] = []
        self._calls: list[CallRecord] = []
        self._created: list[CreatedEntity] = []
        # kind -> [(selector name, selector value, timeline)], most recent first.
        self._timelines: dict[str, list[tuple[str, str, Timeline]]] = {}
        self._next_id = 1000
        #: Job notification webhooks (set by the server: it owns the delivery loop).
        self.webhooks: Any = None
        self._wall_base = time.time()
        self._clock_base = clock()

    def now(self) -> float:
        """Returns the simulator clock."""
        return self.clock()

    def epoch_ms(self, at: float) -> int:
        """Converts a simulator clock reading into epoch milliseconds (for start_time etc.)."""
        return int((self._wall_base + (at - self._clock_base)) * 1000)

    def new_id(self) -> int:
        """Returns a fresh numeric id, unique across families."""
        self._next_id += 1
        return self._next_id

    def record_call(self, record: CallRecord) -> None:
        """Appends a call to the log."""
        with self.lock:
            self._calls.append(record)

    def calls(self) -> list[CallRecord]:
        """Returns a copy of the call log."""
        with self.lock:
            return list(self._calls)

    def record_created(self, kind: str, entity_id: object, **attrs: Any) -> None:
        """Records that a call created an entity."""
        self._created.append(CreatedEntity(kind, str(entity_id), attrs))

    def created(self) -> list[CreatedEntity]:
        """Returns every entity created so far."""
        with self.lock:
            return list(self._created)

    def presets(self, kind: str) -> Mapping[str, Timeline]:
        """Returns the named timelines of ``kind``.

        Raises:
            KeyError: Unknown kind.
        """
        for family in self.families:
            if kind in family.presets:
                return family.presets[kind]
        known = sorted(k for f in self.families for k in f.presets)
        raise KeyError(f"unknown kind {kind!r}; known: {known}")

    def family_of(self, kind: str) -> Family:
        """Returns the family owning timeline kind ``kind``."""
        for family in self.families:
            if kind in family.presets:
                return family
        raise KeyError(f"unknown kind {kind!r}")

    def set_timeline(self, kind: str, timeline: Timeline, match: Mapping[str, object]) -> None:
        """Configures the timeline of new entities of ``kind``.

        Args:
            kind: The timeline kind.
            timeline: The phases.
            match: Empty for the default of the kind, else one ``selector: value`` pair
                (e.g. ``{"job_id": 12}`` or ``{"run_name": "nightly"}``).
        """
        self.presets(kind)
        if len(match) > 1:
            raise ValueError("match on one selector at a time")
        with self.lock:
            rules = self._timelines.setdefault(kind, [])
            name, value = next(iter(match.items())) if match else ("", "")
            rules[:] = [r for r in rules if (r[0], r[1]) != (name, str(value))]
            rules.insert(0, (name, str(value), timeline))

    def clear_timelines(self) -> None:
        """Forgets every configured timeline: presets' ``default`` applies again."""
        with self.lock:
            self._timelines.clear()

    def timeline_for(self, kind: str, selectors: Sequence[tuple[str, object]]) -> Timeline:
        """Returns the timeline for a new entity of ``kind``.

        Args:
            kind: The timeline kind.
            selectors: The entity's ``(selector name, value)`` pairs, most specific first.
        """
        configured = self.configured_timeline(kind, selectors)
        return configured if configured is not None else self.presets(kind)["default"]

    def configured_timeline(
        self, kind: str, selectors: Sequence[tuple[str, object]]
    ) -> Timeline | None:
        """The timeline :meth:`set_timeline` configured for such an entity, if any."""
        rules = self._timelines.get(kind, [])
        for name, value in selectors:
            if value is None:
                continue
            for rule_name, rule_value, timeline in rules:
                if rule_name == name and rule_value == str(value):
                    return timeline
        for rule_name, _, timeline in rules:
            if rule_name == "":
                return timeline
        return None

    def reset(self) -> None:
        """Forgets entities, calls, faults and timelines (not the clock or the seed)."""
        with self.lock:
            for family in self.families:
                family.reset()
            self._calls.clear()
            self._created.clear()
            self._timelines.clear()
            self.faults.clear()
            if self.webhooks is not None:
                self.webhooks.reset()
            self.rng.seed(self.seed)
