"""The ``work`` column: a record's typed work fields and its runner's payload as one JSON text.

Every store keeps what core knows about the work behind an operation (family, deadline,
cancel requested, trace parent, request digest) and the runner's payload in one JSON
column, written and read only here, so the backends stay interchangeable and no backend
parses the payload::

    {"v":2,"family":"jobs","deadline_us":1735690800000000,"cancel_requested":false,
     "traceparent":"","request_digest":"9f2c…","payload":{"action":"run_now",...}}

The payload comes last and is spliced in as the runner wrote it, and cut out again on
read, so neither direction re-serializes it. Rows written before the record was typed
(one flat object: ``family``, ``deadline_us``, ``cancel_requested``, ``traceparent`` and
the runner's keys side by side) are still read: the core keys are taken out and the rest is
the payload.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from typing import Any

from lro_server.core.errors import FailedPrecondition, InvalidArgument
from lro_server.core.labels import NO_KEYS, SearchKeys
from lro_server.core.record import OperationRecord, check_sizes

#: Format marker of the column as written now.
VERSION = 2
_PAYLOAD_KEY = ',"payload":'
#: Keys of the flat, untyped form that belong to core (and one that is derived now).
_CORE_KEYS = frozenset({"family", "deadline_us", "cancel_requested", "traceparent"})
_DROPPED_KEYS = frozenset({"timeout_seconds"})


@dataclasses.dataclass(frozen=True, slots=True)
class WorkFields:
    """The record fields kept in the ``work`` column."""

    family: str = ""
    deadline_us: int = 0
    cancel_requested: bool = False
    traceparent: str = ""
    request_digest: str = ""
    payload: str = "{}"
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    keys: SearchKeys = NO_KEYS
    hint_us: int = 0


def writable_work(record: OperationRecord) -> str:
    """The ``work`` column of ``record`` after checking every size limit.

    Stores call this before writing anything, so an oversized record or a payload that is
    not a JSON object changes nothing: FailedPrecondition names the limit, InvalidArgument
    says what is wrong with the payload.
    """
    _check_payload(record.payload)
    fields: dict[str, Any] = {
        "v": VERSION,
        "family": record.family,
        "deadline_us": record.deadline_us,
        "cancel_requested": record.cancel_requested,
        "traceparent": record.traceparent,
    }
    # Written only when set, so most rows keep the short header.
    if record.request_digest:
        fields["request_digest"] = record.request_digest
    if record.labels:
        fields["labels"] = dict(record.labels)
    keys = record.keys.to_json()
    if keys:
        fields["keys"] = keys
    if record.hint_us:
        fields["hint_us"] = record.hint_us
    header = json.dumps(fields, separators=(",", ":"))
    work = f"{header[:-1]}{_PAYLOAD_KEY}{record.payload}}}"
    check_sizes(record, work)
    return work


@functools.lru_cache(maxsize=16)
def _check_payload(payload: str) -> None:
    """InvalidArgument unless ``payload`` is a JSON object. The last few texts that passed
    are remembered (an unchanged payload, rewritten with every write of its record, is
    parsed once; a string computes its hash once and keeps it), at most 16 of them: at
    most 16 MiB kept at the work column's size limit."""
    try:
        parsed = json.loads(payload)
    except ValueError as exc:
        raise InvalidArgument(f"payload is not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise InvalidArgument("payload must be a JSON object")


def read_work(text: str) -> WorkFields:
    """The fields stored in a ``work`` column (either form)."""
    try:
        document: Any = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        if document.get("v") == VERSION:
            # json.dumps escapes every quote inside strings, so the first unescaped
            # ',"payload":' is the payload's key, written last by writable_work.
            payload = text[text.index(_PAYLOAD_KEY) + len(_PAYLOAD_KEY) : -1]
            return _fields(document, payload)
        legacy = {
            k: v for k, v in document.items() if k not in _CORE_KEYS and k not in _DROPPED_KEYS
        }
        return _fields(document, json.dumps(legacy, separators=(",", ":")))
    except (ValueError, TypeError) as exc:
        raise FailedPrecondition(
            f"stored work description is unreadable: {exc}", reason="WORK_UNREADABLE"
        ) from exc


def work_fields(text: str) -> dict[str, Any]:
    """:func:`read_work` as keyword arguments of :class:`OperationRecord` (for stores)."""
    fields = read_work(text)
    return {
        "family": fields.family,
        "deadline_us": fields.deadline_us,
        "cancel_requested": fields.cancel_requested,
        "traceparent": fields.traceparent,
        "request_digest": fields.request_digest,
        "payload": fields.payload,
        "labels": fields.labels,
        "keys": fields.keys,
        "hint_us": fields.hint_us,
    }


def _fields(document: dict[str, Any], payload: str) -> WorkFields:
    return WorkFields(
        family=str(document.get("family") or ""),
        deadline_us=int(document.get("deadline_us") or 0),
        cancel_requested=bool(document.get("cancel_requested")),
        traceparent=str(document.get("traceparent") or ""),
        request_digest=str(document.get("request_digest") or ""),
        payload=payload,
        labels={str(k): str(v) for k, v in (document.get("labels") or {}).items()},
        keys=SearchKeys.from_json(document.get("keys") or {}),
        hint_us=int(document.get("hint_us") or 0),
    )
