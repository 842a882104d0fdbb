"""Start requests → the Databricks REST body and operation settings they carry.

Our request messages use the Databricks REST field names, so the body is the message's
proto3 JSON with the AIP fields (``request_id``, ``timeout``) taken out and int64 values
turned back into JSON numbers (proto3 JSON writes them as strings; Databricks wants numbers).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from lro_server.core.errors import InvalidArgument

#: Fields every start request has, which are ours rather than Databricks'.
AIP_FIELDS = ("request_id", "timeout")
#: Default operation timeout (20 minutes).
DEFAULT_TIMEOUT_SECONDS = 20 * 60.0
#: Longest operation timeout accepted (7 days).
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600.0


@dataclasses.dataclass(frozen=True, slots=True)
class StartArgs:
    """What a start request asks for."""

    body: dict[str, Any]
    request_id: str
    timeout_seconds: float


def start_args(request: Message, *, default_timeout: float = DEFAULT_TIMEOUT_SECONDS) -> StartArgs:
    """Split a start request into the Databricks body and the AIP fields."""
    body = json_format.MessageToDict(request, preserving_proto_field_name=True)
    for name in AIP_FIELDS:
        body.pop(name, None)
    body = _numbers(body, request)
    timeout = default_timeout
    if request.HasField("timeout"):
        duration = getattr(request, "timeout")  # noqa: B009  every start request has one
        seconds = duration.seconds + duration.nanos / 1e9
        if seconds <= 0 or not math.isfinite(seconds) or seconds > MAX_TIMEOUT_SECONDS:
            raise InvalidArgument(
                f"timeout must be positive and at most {MAX_TIMEOUT_SECONDS:g}s",
                metadata={"field": "timeout"},
            )
        timeout = seconds
    return StartArgs(
        body=body, request_id=getattr(request, "request_id", ""), timeout_seconds=timeout
    )


def _numbers(body: dict[str, Any], request: Message) -> dict[str, Any]:
    int64 = {
        f.name
        for f in request.DESCRIPTOR.fields
        if f.cpp_type in (f.CPPTYPE_INT64, f.CPPTYPE_UINT64)
    }
    out: dict[str, Any] = {}
    for key, value in body.items():
        out[key] = int(value) if key in int64 and isinstance(value, str) else _integral(value)
    return out


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
