"""Conversions the families share: Databricks JSON → timestamps, Structs, ErrorInfo."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from lro_server.core.errors import ERROR_DOMAIN
from lro_server.databricks.work import Work

M = TypeVar("M", bound=Message)

#: Tag (or name marker) carrying the operation id on entities created without an
#: idempotency token, so that a retried start can find them.
OPERATION_TAG = "lro_operation_id"


def timestamp(micros: int) -> timestamp_pb2.Timestamp:
    """A Timestamp of epoch microseconds."""
    stamp = timestamp_pb2.Timestamp()
    stamp.FromMicroseconds(micros)
    return stamp


def millis(value: Any) -> timestamp_pb2.Timestamp | None:
    """A Timestamp of Databricks epoch milliseconds (None when absent or 0)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return timestamp(number * 1000) if number > 0 else None


def struct(value: Mapping[str, Any] | None) -> struct_pb2.Struct:
    """A Struct of a JSON object (numbers become doubles, as in every Struct)."""
    out = struct_pb2.Struct()
    if value:
        out.update(json.loads(json.dumps(value, default=str)))
    return out


def value(data: Any) -> struct_pb2.Value:
    """A google.protobuf.Value of any JSON value."""
    out = struct_pb2.Value()
    json_format.ParseDict(json.loads(json.dumps(data, default=str)), out)
    return out


def stamp_initial(metadata: Message, work: Work) -> Message:
    """Set the create/update/deadline times every metadata message of ours has."""
    for field, micros in (
        ("create_time", work.create_time_us),
        ("update_time", work.create_time_us),
        ("deadline", work.deadline_us),
    ):
        getattr(metadata, field).CopyFrom(timestamp(micros))
    if work.labels and "labels" in metadata.DESCRIPTOR.fields_by_name:
        getattr(metadata, "labels").update(work.labels)  # noqa: B009 - every metadata has it
    return metadata


def carry_over(cls: type[M], previous: Message | None, work: Work) -> M:
    """New ``cls`` metadata: a copy of ``previous`` (if of that type) with the cancel flag."""
    meta = cls()
    if isinstance(previous, cls):
        meta.CopyFrom(previous)
    if work.cancel_requested:
        setattr(meta, "cancel_requested", True)  # noqa: B010 - every metadata type has it
    return meta


#: Live state of an operation whose start waits for Databricks to be reachable again.
START_DEFERRED = "START_DEFERRED"
#: The state fields of our metadata messages, in the order the first present one is used.
_STATE_FIELDS = ("life_cycle_state", "state", "status")


def _state_field(metadata: Message) -> str:
    """The state field of ``metadata`` ("" for a message without one and a state message)."""
    fields = metadata.DESCRIPTOR.fields_by_name
    if "state_message" not in fields:
        return ""
    return next((name for name in _STATE_FIELDS if name in fields), "")


def deferred(metadata: Message, message: str) -> Message:
    """A copy of ``metadata`` saying the start is deferred (its state and state message)."""
    out = type(metadata)()
    out.CopyFrom(metadata)
    field = _state_field(out)
    if field:
        setattr(out, field, START_DEFERRED)
        setattr(out, "state_message", message)  # noqa: B010 - checked by _state_field
    return out


def undeferred(metadata: Message) -> Message:
    """A copy of ``metadata`` without the deferral :func:`deferred` wrote (if any)."""
    out = type(metadata)()
    out.CopyFrom(metadata)
    field = _state_field(out)
    if field and getattr(out, field) == START_DEFERRED:
        setattr(out, field, "")
        setattr(out, "state_message", "")  # noqa: B010 - checked by _state_field
    return out


def error_info(reason: str, **metadata: Any) -> error_details_pb2.ErrorInfo:
    """ErrorInfo of a failed Databricks entity (empty values left out)."""
    return error_details_pb2.ErrorInfo(
        reason=reason,
        domain=ERROR_DOMAIN,
        metadata={k: str(v) for k, v in metadata.items() if v not in (None, "")},
    )


def canonical(data: Any) -> str:
    """A stable text of a JSON value (to compare library specs)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
