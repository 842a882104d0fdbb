"""Fault injection: which REST calls fail, and how (429, 503, dropped connection, delay)."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

__all__ = ["Fault", "FaultKind", "FaultTable"]

#: The kinds of fault:
#: ``rate_limit`` answers 429 REQUEST_LIMIT_EXCEEDED with a Retry-After header;
#: ``unavailable`` answers 503 TEMPORARILY_UNAVAILABLE;
#: ``drop_after_commit`` applies the request, then closes the connection without an answer;
#: ``slow`` waits ``delay`` seconds (real time) before handling the request;
#: ``slow_after_commit`` applies the request, then waits ``delay`` seconds before answering
#: (a caller that dies meanwhile never learns the answer of an applied call).
FaultKind = Literal["rate_limit", "unavailable", "drop_after_commit", "slow", "slow_after_commit"]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)


@dataclass
class Fault:
    """One fault rule.

    Attributes:
        kind: What happens to a matching call.
        path: A regular expression searched in the request path; ``None`` matches all.
        method: An HTTP method to match (e.g. ``"POST"``); ``None`` matches all.
        times: How many matching calls still get the fault (deterministic "next N
            calls"); ``None`` means no limit.
        probability: The chance each matching call gets the fault, drawn from the
            simulator's seeded random generator; ``None`` means always.
        retry_after: Seconds sent in the Retry-After header of 429/503 answers.
        delay: Seconds a ``slow`` fault waits.
        fault_id: Assigned by the table.
        hits: How many calls this fault has hit so far.
    """

    kind: FaultKind
    path: str | None = None
    method: str | None = None
    times: int | None = None
    probability: float | None = None
    retry_after: int = 1
    delay: float = 0.0
    fault_id: int = 0
    hits: int = 0
    _pattern: re.Pattern[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {FAULT_KINDS}")
        self._pattern = re.compile(self.path) if self.path is not None else None

    def matches(self, method: str, path: str) -> bool:
        """Tells whether the rule covers this call (ignoring ``times`` and ``probability``)."""
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self._pattern is None or self._pattern.search(path) is not None

    def to_json(self) -> dict[str, Any]:
        """Returns the rule as JSON (the shape the control API accepts, plus its state)."""
        return {
            "fault_id": self.fault_id,
            "kind": self.kind,
            "path": self.path,
            "method": self.method,
            "times": self.times,
            "probability": self.probability,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "hits": self.hits,
        }

    @staticmethod
    def from_json(obj: Mapping[str, Any]) -> Fault:
        """Reads the JSON shape of :meth:`to_json` (``kind`` required, the rest optional)."""
        known = {"kind", "path", "method", "times", "probability", "retry_after", "delay"}
        unknown = set(obj) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return Fault(**{k: v for k, v in obj.items() if v is not None})


class FaultTable:
    """The active fault rules; the first rule that fires wins.

    Not thread-safe by itself: the simulator calls it under its state lock.
    """

    def __init__(self, rng: random.Random) -> None:
        """Creates an empty table drawing probabilities from ``rng``."""
        self._rng = rng
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(self, fault: Fault) -> int:
        """Adds a rule and returns its id."""
        fault.fault_id = self._next_id
        self._next_id += 1
        self._faults.append(fault)
        return fault.fault_id

    def remove(self, fault_id: int) -> None:
        """Removes one rule (no error if it is gone)."""
        self._faults = [f for f in self._faults if f.fault_id != fault_id]

    def clear(self) -> None:
        """Removes every rule."""
        self._faults.clear()

    def rules(self) -> list[Fault]:
        """Returns the active rules."""
        return list(self._faults)

    def pick(self, method: str, path: str) -> Fault | None:
        """Returns the fault to apply to this call, consuming one of its ``times``."""
        for fault in self._faults:
            if not fault.matches(method, path):
                continue
            if fault.times is not None and fault.times <= 0:
                continue
            # Draw only for probabilistic rules so that deterministic rules do not shift
            # the seeded sequence other tests rely on.
            if fault.probability is not None and self._rng.random() >= fault.probability:
                continue
            if fault.times is not None:
                fault.times -= 1
            fault.hits += 1
            return fault
        return None
