"""The journal of a durable method: its events, and their fold into one slot per position.

Every primitive of a method takes a *position* (0, 1, 2, … in the order the code creates
them). The journal is an append-only list of small JSON facts about positions, one store
row each (``seq`` = index in the journal, from 1)::

    {"kind":"CALL","pos":0,"method":"lro.databricks.v1.Jobs/RunNow","digest":"…",
     "child":"operations/…","request_id":"durable-<parent id>-0"}
    {"kind":"CHILD_DONE","pos":0,"response":{…}}          or "error":{"code":5,"message":…}
    {"kind":"STEP_DONE","pos":1,"name":"email","result":…}
    {"kind":"STEP_FAILED","pos":1,"name":"email","error":{…},"attempt":1,"final":false,
     "retry_at_us":…}
    {"kind":"SLEEP","pos":2,"until_us":…}
    {"kind":"PROMISE","pos":3,"name":"published","secret":"<32 hex>"}
    {"kind":"PROMISE_RESOLVED","pos":3,"value":…}       or "error":{"code":…,"message":…}

Replay folds them into a :class:`Slot` per position. Nothing here touches the store.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from lro_server.core.errors import NotFound
from lro_server.core.names import operation_id
from lro_server.core.store import MAX_JOURNAL_EVENT_BYTES, JournalEvent

#: Largest outcome (a step's result, a child's response) one event may hold, as JSON: the
#: event has room for the rest of it.
MAX_OUTCOME_BYTES = MAX_JOURNAL_EVENT_BYTES - 64 * 1024


def oversize(encoded: str) -> int:
    """The size in bytes of the JSON text ``encoded`` when over :data:`MAX_OUTCOME_BYTES`,
    else 0 (a text of fewer characters than a quarter of the limit is not encoded)."""
    if len(encoded) * 4 <= MAX_OUTCOME_BYTES:
        return 0
    size = len(encoded.encode())
    return size if size > MAX_OUTCOME_BYTES else 0


CALL = "CALL"
CHILD_DONE = "CHILD_DONE"
STEP = "STEP"
STEP_DONE = "STEP_DONE"
STEP_FAILED = "STEP_FAILED"
SLEEP = "SLEEP"
PROMISE = "PROMISE"
PROMISE_RESOLVED = "PROMISE_RESOLVED"

#: Random bits of a promise id's secret (the id is the capability to resolve it).
PROMISE_SECRET_BYTES = 16


def encode(event: Mapping[str, Any]) -> str:
    """The stored text of an event (compact JSON, keys sorted)."""
    return json.dumps(event, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def digest(request: Any) -> str:
    """A short digest of a call's request (its canonical JSON), to detect drift."""
    text = json.dumps(request, separators=(",", ":"), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def error_json(code: int, message: str) -> dict[str, Any]:
    """An ``error`` member of an event (a google.rpc.Status without details)."""
    return {"code": int(code), "message": message}


@dataclasses.dataclass(slots=True)
class Slot:
    """Everything the journal says about one position.

    Attributes:
        kind: CALL, STEP, SLEEP or PROMISE.
        name: The called method, the step's or the promise's name ("" for a sleep).
        digest: The call's request digest.
        child: The child operation's name (calls).
        request_id: The child's AIP-155 request id (calls).
        done: The call, step or promise has its outcome.
        result: The outcome's value (a child's response, a step's result, a promise's value).
        error: The outcome's error (``{"code", "message"}``), or None.
        attempts: Failed attempts of a step so far.
        retry_at_us: When a step's next attempt may run (0: now).
        until_us: When a sleep is due.
        secret: A promise's secret.
        seq: Seq of the event that created the slot.
    """

    kind: str
    name: str = ""
    digest: str = ""
    child: str = ""
    request_id: str = ""
    done: bool = False
    result: Any = None
    error: dict[str, Any] | None = None
    attempts: int = 0
    retry_at_us: int = 0
    until_us: int = 0
    secret: str = ""
    seq: int = 0

    def describe(self) -> str:
        """How drift messages name what the journal recorded here."""
        if self.kind == CALL:
            return f"call {self.name} (request {self.digest})"
        if self.kind == STEP:
            return f"step {self.name!r}"
        if self.kind == PROMISE:
            return f"promise {self.name!r}"
        return "sleep"


class Fold:
    """The journal folded into slots by position; apply events in seq order."""

    def __init__(self, events: Iterable[JournalEvent] = ()) -> None:
        self.slots: dict[int, Slot] = {}
        #: Seq of the last event applied (the journal's length).
        self.seq = 0
        #: The highest position recorded (-1 for an empty journal).
        self.last_position = -1
        #: Positions still open: calls, promises and retrying steps without an outcome, and
        #: sleeps no later position has passed (so showing them costs what is open).
        self.open: set[int] = set()
        #: What a view built per position and state (kept until the position changes).
        self.shown: dict[int, tuple[int, Any]] = {}
        self.extend(events)

    def extend(self, events: Iterable[JournalEvent]) -> list[tuple[int, dict[str, Any]]]:
        """Fold stored events in (in seq order); returns them as (seq, decoded JSON)."""
        decoded = [(event.seq, json.loads(event.data)) for event in events]
        for seq, data in decoded:
            self.apply(seq, data)
        return decoded

    def apply(self, seq: int, event: Mapping[str, Any]) -> None:
        """Fold one event (its ``seq`` and decoded JSON) in."""
        self.seq = max(self.seq, seq)
        kind, pos = str(event["kind"]), int(event["pos"])
        if pos > self.last_position:
            self.last_position = pos
            self.open = {q for q in self.open if q > pos or self.slots[q].kind != SLEEP}
        self._apply(kind, pos, event, seq)
        self.shown.pop(pos, None)
        slot = self.slots.get(pos)
        if slot is not None and not slot.done:
            self.open.add(pos)
        else:
            self.open.discard(pos)

    def _apply(self, kind: str, pos: int, event: Mapping[str, Any], seq: int) -> None:
        slot = self.slots.get(pos)
        if kind == CALL:
            self.slots[pos] = Slot(
                CALL,
                name=str(event["method"]),
                digest=str(event["digest"]),
                child=str(event["child"]),
                request_id=str(event["request_id"]),
                seq=seq,
            )
        elif kind == SLEEP:
            self.slots[pos] = Slot(SLEEP, until_us=int(event["until_us"]), seq=seq)
        elif kind == PROMISE:
            self.slots[pos] = Slot(
                PROMISE, name=str(event["name"]), secret=str(event["secret"]), seq=seq
            )
        elif kind in (STEP_DONE, STEP_FAILED):
            if slot is None:
                slot = self.slots[pos] = Slot(STEP, name=str(event["name"]), seq=seq)
            if kind == STEP_DONE:
                slot.done, slot.result, slot.error = True, event.get("result"), None
            else:
                slot.attempts = int(event["attempt"])
                slot.error = dict(event["error"])
                slot.done = bool(event["final"])
                slot.retry_at_us = int(event.get("retry_at_us") or 0)
        elif kind in (CHILD_DONE, PROMISE_RESOLVED) and slot is not None and not slot.done:
            slot.done = True
            slot.result = event.get("response" if kind == CHILD_DONE else "value")
            slot.error = dict(event["error"]) if event.get("error") is not None else None


def new_secret() -> str:
    """A fresh promise secret (128 random bits, hex)."""
    return secrets.token_hex(PROMISE_SECRET_BYTES)


def promise_id(parent: str, position: int, secret: str) -> str:
    """The id handed out for a promise: it locates the promise and proves its holder."""
    return f"{operation_id(parent)}.{position}.{secret}"


def parse_promise_id(text: str) -> tuple[str, int, str]:
    """(parent name, position, secret) of a promise id; NotFound for anything malformed
    (the same answer as for an unknown promise: no hint about what exists)."""
    parts = text.split(".")
    if len(parts) != 3 or not parts[1].isdigit() or len(parts[1]) > 9:
        raise unknown_promise()
    try:
        parent = "operations/" + operation_id("operations/" + parts[0])
    except Exception:
        raise unknown_promise() from None
    return parent, int(parts[1]), parts[2]


def secret_matches(slot: Slot | None, secret: str) -> bool:
    """Whether ``slot`` is a promise whose secret is ``secret`` (constant time)."""
    expected = slot.secret if slot is not None and slot.kind == PROMISE else ""
    return hmac.compare_digest(expected.encode(), secret.encode()) and bool(expected)


def unknown_promise() -> NotFound:
    """The one answer to an unknown, malformed or wrong promise id."""
    return NotFound("promise not found", reason="PROMISE_NOT_FOUND")
