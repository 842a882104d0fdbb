"""Checkpoints of resumable methods: a small JSON document kept in the record's checkpoint.

The format is language-neutral (UTF-8 JSON, never pickle), so any tool can read where a
method stopped::

    {
      "format": "lro-checkpoint/1",
      "method": "lro.databricks.v1.Chains/RunChain",
      "seq": 3,
      "wait": {"id": 3, "children": ["operations/…"], "deadline_us": 1767225600000000,
               "handle": "", "retries": 0},
      "state": {…method-specific JSON…}
    }

``seq`` grows by one with every commit of the method; a wait is identified by the ``seq`` of
the commit that started it, so a waiter can say which wait it ends (``x-lro-wait-id``) and a
late or repeated resume of an older wait is recognised as a no-op. ``wait`` is null while the
method is not waiting (running a step, or done). A durable method's wait may also name
promises (``promises``, and those already ``resolved``) and a time to wake at
(``wake_at_us``); these keys are written only when set, so other checkpoints are
unchanged. Writes go through the store's compare-and-set on the record version, which
covers the checkpoint column.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from lro_server.core.errors import FailedPrecondition
from lro_server.core.record import OperationRecord

#: Value of the ``format`` key; bump on an incompatible change.
FORMAT = "lro-checkpoint/1"


@dataclasses.dataclass(frozen=True, slots=True)
class Wait:
    """What a method waits for.

    Attributes:
        id: The ``seq`` of the commit that started this wait.
        children: Names of the child operations to wait for (all of them).
        deadline_us: When the parent times out (microseconds since the epoch).
        handle: The waiter's handle once handed off (a workflow execution name), or "".
        retries: How many times the wait was handed off again after a waiter gave up.
        promises: Ids of promises to wait for, all of them (durable methods).
        resolved: Those of ``promises`` resolved since the wait began.
        wake_at_us: Not ready before this time (0: no timer).
    """

    id: int
    children: tuple[str, ...]
    deadline_us: int
    handle: str = ""
    retries: int = 0
    promises: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()
    wake_at_us: int = 0

    def ready(self, now_us: int, children_done: bool) -> bool:
        """Whether everything waited for is there: children (as judged by the caller),
        every promise resolved, and the timer due."""
        return (
            children_done and set(self.promises) <= set(self.resolved) and now_us >= self.wake_at_us
        )

    def to_json(self) -> dict[str, Any]:
        """JSON object of the wait."""
        obj: dict[str, Any] = {
            "id": self.id,
            "children": list(self.children),
            "deadline_us": self.deadline_us,
            "handle": self.handle,
            "retries": self.retries,
        }
        if self.promises:
            obj["promises"] = list(self.promises)
            obj["resolved"] = list(self.resolved)
        if self.wake_at_us:
            obj["wake_at_us"] = self.wake_at_us
        return obj

    @staticmethod
    def from_json(obj: Mapping[str, Any]) -> Wait:
        """Parse a wait written by :meth:`to_json`."""
        return Wait(
            id=int(obj["id"]),
            children=tuple(str(c) for c in obj["children"]),
            deadline_us=int(obj["deadline_us"]),
            handle=str(obj.get("handle", "")),
            retries=int(obj.get("retries", 0)),
            promises=tuple(str(p) for p in obj.get("promises", ())),
            resolved=tuple(str(p) for p in obj.get("resolved", ())),
            wake_at_us=int(obj.get("wake_at_us", 0)),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where a resumable method stands.

    Attributes:
        method: Full name of the method, e.g. ``lro.databricks.v1.Chains/RunChain``.
        seq: Number of commits so far (0 before the first).
        wait: The current wait, or None.
        state: The method's own JSON state.
    """

    method: str
    seq: int = 0
    wait: Wait | None = None
    state: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def encode(self) -> bytes:
        """The stored bytes (compact UTF-8 JSON)."""
        document = {
            "format": FORMAT,
            "method": self.method,
            "seq": self.seq,
            "wait": self.wait.to_json() if self.wait else None,
            "state": dict(self.state),
        }
        return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()

    @staticmethod
    def of(record: OperationRecord) -> Checkpoint:
        """The checkpoint of ``record``; FailedPrecondition when it has none or it is
        unreadable."""
        if record.checkpoint is None:
            raise FailedPrecondition(
                f"{record.name} has no checkpoint",
                reason="NOT_RESUMABLE",
                metadata={"name": record.name},
            )
        return Checkpoint.decode(record.checkpoint, name=record.name)

    @staticmethod
    def decode(data: bytes, *, name: str = "") -> Checkpoint:
        """Parse stored bytes; FailedPrecondition for anything this version cannot read."""
        try:
            document = json.loads(data)
            if document.get("format") != FORMAT:
                raise ValueError(f"unknown format {document.get('format')!r}")
            wait = document.get("wait")
            return Checkpoint(
                method=str(document["method"]),
                seq=int(document["seq"]),
                wait=Wait.from_json(wait) if wait else None,
                state=dict(document.get("state") or {}),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise FailedPrecondition(
                f"checkpoint of {name or 'the operation'} is unreadable: {exc}",
                reason="CHECKPOINT_UNREADABLE",
                metadata={"name": name},
            ) from exc

    def committed(
        self, *, state: Mapping[str, Any], wait_on: tuple[str, ...] | None, deadline_us: int
    ) -> Checkpoint:
        """The next checkpoint: ``seq + 1``, waiting on ``wait_on`` (None: not waiting)."""
        seq = self.seq + 1
        wait = Wait(seq, wait_on, deadline_us) if wait_on else None
        return Checkpoint(self.method, seq, wait, dict(state))

    def handed_to(self, handle: str) -> Checkpoint:
        """The same checkpoint with the current wait's waiter handle recorded."""
        if self.wait is None:
            return self
        return dataclasses.replace(self, wait=dataclasses.replace(self.wait, handle=handle))

    def rewaited(self) -> Checkpoint:
        """A fresh wait on the same children after a waiter gave up (``retries + 1``)."""
        if self.wait is None:
            return self
        seq = self.seq + 1
        wait = dataclasses.replace(self.wait, id=seq, handle="", retries=self.wait.retries + 1)
        return dataclasses.replace(self, seq=seq, wait=wait)
