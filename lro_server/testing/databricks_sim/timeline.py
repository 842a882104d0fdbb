"""Timelines: the phases an entity goes through, evaluated lazily from elapsed time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

__all__ = ["Phase", "Progress", "Timeline", "TimelineSpec", "parse_timeline"]


@dataclass(frozen=True)
class Phase:
    """One state of an entity and how long it lasts.

    Attributes:
        state: The family's state name, e.g. ``"RUNNING"`` for a job run's life cycle.
            Any string is allowed, so tests can produce values clients do not know.
        seconds: How long the phase lasts. ``None`` means forever: a terminal phase, or a
            "hold" that only the control API (``finish``) ends. The last phase of a
            timeline always lasts forever, whatever its ``seconds``.
        fields: Family-specific details of the phase, e.g. ``result_state`` and
            ``state_message`` for a job run.
    """

    state: str
    seconds: float | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Returns the phase as the JSON object :meth:`from_json` reads."""
        out: dict[str, Any] = {"state": self.state, **self.fields}
        if self.seconds is not None:
            out["seconds"] = self.seconds
        return out

    @staticmethod
    def from_json(obj: Mapping[str, Any]) -> Phase:
        """Reads ``{"state": ..., "seconds": ..., <field>: ...}``."""
        if not isinstance(obj.get("state"), str):
            raise ValueError(f"a phase needs a string 'state': {obj!r}")
        seconds = obj.get("seconds")
        rest = {k: v for k, v in obj.items() if k not in ("state", "seconds")}
        return Phase(obj["state"], None if seconds is None else float(seconds), rest)


#: An immutable sequence of phases.
Timeline: TypeAlias = tuple[Phase, ...]

#: What callers may pass for a timeline: a preset name, or phases (objects or JSON dicts).
TimelineSpec: TypeAlias = str | Sequence[Phase | Mapping[str, Any]]


def parse_timeline(spec: TimelineSpec, presets: Mapping[str, Timeline]) -> Timeline:
    """Turns a :data:`TimelineSpec` into a :data:`Timeline`.

    Args:
        spec: A preset name of the family, or a non-empty sequence of phases.
        presets: The family's named timelines.

    Returns:
        The timeline.

    Raises:
        ValueError: Unknown preset or empty timeline.
    """
    if isinstance(spec, str):
        if spec not in presets:
            raise ValueError(f"unknown preset {spec!r}; known: {sorted(presets)}")
        return presets[spec]
    phases = tuple(p if isinstance(p, Phase) else Phase.from_json(p) for p in spec)
    if not phases:
        raise ValueError("a timeline needs at least one phase")
    return phases


class Progress:
    """An entity's position on its timeline, computed from the clock on each read."""

    def __init__(self, phases: Timeline, now: float) -> None:
        """Starts ``phases`` at time ``now``."""
        self.phases = phases
        self.started = now

    def restart(self, phases: Timeline, now: float) -> None:
        """Replaces the rest of the entity's life with ``phases`` from ``now`` on."""
        self.phases = phases
        self.started = now

    def current(self, now: float) -> Phase:
        """Returns the phase the entity is in at ``now``."""
        return self.position(now)[0]

    def position(self, now: float) -> tuple[Phase, float]:
        """Returns the current phase and the clock reading at which it began."""
        begin = self.started
        for phase in self.phases[:-1]:
            if phase.seconds is None or now < begin + phase.seconds:
                return phase, begin
            begin += phase.seconds
        return self.phases[-1], begin

    def settled(self, now: float) -> bool:
        """Tells whether the entity reached its last phase (or a held one)."""
        phase = self.current(now)
        return phase is self.phases[-1] or phase.seconds is None
