"""Start requests → the Databricks REST body and operation settings they carry.

Our request messages use the Databricks REST field names, so the body is the message's
proto3 JSON with the AIP fields (``request_id``, ``timeout``) taken out and int64 values
turned back into JSON numbers (proto3 JSON writes them as strings; Databricks wants numbers).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

from google.protobuf import duration_pb2, json_format, struct_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from lro_server.core.errors import InvalidArgument
from lro_server.core.labels import validate_labels

#: Fields of start requests that are ours rather than Databricks'.
AIP_FIELDS = ("request_id", "timeout", "labels", "repair_policy")
#: Default operation timeout (20 minutes).
DEFAULT_TIMEOUT_SECONDS = 20 * 60.0
#: Longest operation timeout accepted (7 days).
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600.0
#: Range of a valid google.protobuf.Duration (about 10,000 years).
_MAX_DURATION_SECONDS = 315_576_000_000


@dataclasses.dataclass(frozen=True, slots=True)
class StartArgs:
    """What a start request asks for."""

    body: dict[str, Any]
    request_id: str
    timeout_seconds: float
    labels: dict[str, str] = dataclasses.field(default_factory=dict)


def start_args(request: Message, *, default_timeout: float = DEFAULT_TIMEOUT_SECONDS) -> StartArgs:
    """Split a start request into the Databricks body and the AIP fields."""
    timeout = start_timeout(request, default_timeout)
    body = _numbers(message_body(request), request)
    labels = dict(getattr(request, "labels", {}))
    return StartArgs(
        body=body,
        request_id=getattr(request, "request_id", ""),
        timeout_seconds=timeout,
        labels=validate_labels(labels),
    )


def start_timeout(request: Message, default_timeout: float) -> float:
    """The operation timeout a start request asks for (its ``timeout``), else the default."""
    if not request.HasField("timeout"):
        return default_timeout
    duration = getattr(request, "timeout")  # noqa: B009  every start request has one
    return timeout_seconds(duration, "timeout")


def struct_json(struct: struct_pb2.Struct, field: str) -> dict[str, Any]:
    """A Struct field as JSON, whole numbers as ints (Struct numbers are doubles).

    Raises:
        InvalidArgument: A number JSON cannot hold (NaN, an infinity).
    """
    return {key: json_value(value, field) for key, value in struct.fields.items()}


def json_value(value: struct_pb2.Value, field: str) -> Any:
    """A google.protobuf.Value field as JSON; see :func:`struct_json`."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number: float = value.number_value
        if not math.isfinite(number):
            raise InvalidArgument(
                f"{field} holds {number}, which JSON cannot hold", metadata={"field": field}
            )
        return _integral(number)
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_json(value.struct_value, field)
    if kind == "list_value":
        return [json_value(item, field) for item in value.list_value.values]
    return None  # null_value, or a Value left unset (read as null, as proto3 JSON does)


def timeout_seconds(duration: duration_pb2.Duration, field: str) -> float:
    """Seconds of an operation timeout: a valid Duration, positive, at most 7 days."""
    seconds = duration_seconds(duration, field)
    if seconds <= 0 or seconds > MAX_TIMEOUT_SECONDS:
        raise InvalidArgument(
            f"{field} must be positive and at most {MAX_TIMEOUT_SECONDS:g}s",
            metadata={"field": field},
        )
    return seconds


def duration_seconds(duration: duration_pb2.Duration, field: str) -> float:
    """Seconds of ``duration``; InvalidArgument unless it is a valid Duration.

    The wire format accepts any seconds/nanos pair; the Duration spec does not (nanos
    within ±999,999,999 with the sign of seconds, seconds within ±10,000 years), and
    json_format refuses to print an invalid one.
    """
    seconds, nanos = duration.seconds, duration.nanos
    if (
        abs(seconds) > _MAX_DURATION_SECONDS
        or abs(nanos) > 999_999_999
        or (seconds > 0 and nanos < 0)
        or (seconds < 0 and nanos > 0)
    ):
        raise InvalidArgument(f"{field} is not a valid Duration", metadata={"field": field})
    return seconds + nanos / 1e9


def message_body(request: Message) -> dict[str, Any]:
    """The request as Databricks JSON (proto field names), without the AIP fields."""
    message = type(request)()
    message.CopyFrom(request)
    for name in AIP_FIELDS:
        if name in message.DESCRIPTOR.fields_by_name:
            message.ClearField(name)
    try:
        body: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    except (json_format.Error, ValueError) as exc:
        raise InvalidArgument(
            f"the request cannot be sent to Databricks: {str(exc)[:200]}",
            reason="UNREPRESENTABLE_REQUEST",
        ) from None
    return body


def _numbers(body: dict[str, Any], request: Message) -> dict[str, Any]:
    int64 = _int64_fields(request.DESCRIPTOR)
    out: dict[str, Any] = {}
    for key, value in body.items():
        out[key] = int(value) if key in int64 and isinstance(value, str) else _integral(value)
    return out


@functools.cache
def _int64_fields(descriptor: Descriptor) -> frozenset[str]:
    """Fields of a request message that proto3 JSON writes as strings (64-bit integers)."""
    return frozenset(
        f.name for f in descriptor.fields if f.cpp_type in (f.CPPTYPE_INT64, f.CPPTYPE_UINT64)
    )


def _integral(value: Any) -> Any:
    """Struct numbers are doubles: give whole ones back as ints (Databricks wants ints)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def require(condition: bool, field: str, message: str) -> None:
    """Raise InvalidArgument about ``field`` unless ``condition``."""
    if not condition:
        raise InvalidArgument(f"{field}: {message}", metadata={"field": field})
