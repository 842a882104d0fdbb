"""Hypothesis strategies for the fuzz tests: proto messages of any type, names, filters,
page tokens, JSON bodies and headers — mostly wrong, sometimes right."""

from __future__ import annotations

import contextlib
import string
import uuid
from typing import Any

from google.protobuf import descriptor as pb_descriptor
from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

FD = pb_descriptor.FieldDescriptor

#: Strings that tend to break parsers.
NASTY = [
    "",
    " ",
    "\x00",
    "'",
    '"',
    "\\",
    "%",
    "%00",
    "operations/",
    "operations/..",
    "../../etc/passwd",
    "operations/" + "9" * 40,
    "\ud7ff",
    "\U0001f600",
    "\u202e",
    "a" * 5000,
    "(" * 300,
    "NOT " * 200,
    "done = true AND " * 50,
    '"' * 101,
    "1e999",
    "-0",
    "NaN",
    "Infinity",
    "null",
    "{}",
    "[]",
]

text = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=40),
    st.text(alphabet=string.printable, max_size=200),
)


def operation_names(known: list[str]) -> st.SearchStrategy[str]:
    """Names of operations: unknown, malformed, known ones, and nonsense."""
    ids = st.uuids(version=4).map(str)
    return st.one_of(
        ids.map(lambda u: f"operations/{u}"),
        ids.map(lambda u: f"operations/{u.upper()}"),
        st.uuids(version=1).map(lambda u: f"operations/{u}"),
        st.sampled_from(known) if known else st.just(f"operations/{uuid.uuid4()}"),
        text.map(lambda t: "operations/" + t),
        text,
        ids,
    )


FILTER_PARTS = [
    "done",
    "done = true",
    "done=false",
    "metadata.state = RUNNING",
    'metadata.state = "RUNNING"',
    "create_time > 2024-01-01T00:00:00Z",
    'create_time > "garbage"',
    "name:operations",
    "error.code = 5",
    "error.code = 99999999999999999999",
    "AND",
    "OR",
    "NOT",
    "(",
    ")",
    "-",
    "=",
    "!=",
    "<=",
    ">",
    ":",
    "*",
    '"',
    ".",
    "metadata.@type",
    "metadata.",
    "response.run_id = 3",
    "x" * 300,
]

filters = st.one_of(
    text,
    st.lists(st.sampled_from(FILTER_PARTS), max_size=8).map(" ".join),
    st.lists(st.one_of(st.sampled_from(FILTER_PARTS), text), max_size=5).map(" ".join),
)

page_tokens = st.one_of(
    text,
    st.binary(max_size=120).map(lambda b: __import__("base64").urlsafe_b64encode(b).decode()),
    st.just("A" * 10_000),
)

page_sizes = st.one_of(
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.sampled_from([0, -1, 1, 2**31 - 1, -(2**31)]),
)


def durations() -> st.SearchStrategy[duration_pb2.Duration]:
    """Durations, including out-of-range and sign-mismatched ones (legal on the wire)."""
    return st.builds(
        duration_pb2.Duration,
        seconds=st.one_of(
            st.integers(-10, 10),
            st.integers(-(2**63), 2**63 - 1),
            st.sampled_from([315_576_000_000, 315_576_000_001, -315_576_000_001]),
        ),
        nanos=st.one_of(
            st.integers(-999_999_999, 999_999_999),
            st.integers(-(2**31), 2**31 - 1),
        ),
    )


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(text, children, max_size=4)
    ),
    max_leaves=12,
)


def _scalar(field: Any) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32):
        return st.integers(-(2**31), 2**31 - 1)
    if kind in (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64):
        return st.integers(-(2**63), 2**63 - 1)
    if kind in (FD.TYPE_UINT32, FD.TYPE_FIXED32):
        return st.integers(0, 2**32 - 1)
    if kind in (FD.TYPE_UINT64, FD.TYPE_FIXED64):
        return st.integers(0, 2**64 - 1)
    if kind in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return st.floats(width=32 if kind == FD.TYPE_FLOAT else 64)
    if kind == FD.TYPE_BOOL:
        return st.booleans()
    if kind == FD.TYPE_STRING:
        return text
    if kind == FD.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == FD.TYPE_ENUM:
        return st.integers(-3, 40)
    raise AssertionError(f"unhandled field type {kind}")


def messages(descriptor: Any, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of ``descriptor``'s type with random fields (recursion bounded)."""
    cls = GetMessageClass(descriptor)
    name = descriptor.full_name
    if name == "google.protobuf.Duration":
        return durations()
    if name == "google.protobuf.Timestamp":
        return st.builds(
            timestamp_pb2.Timestamp,
            seconds=st.integers(-(2**40), 2**40),
            nanos=st.integers(-(2**31), 2**31 - 1),
        )
    if name == "google.protobuf.Struct":
        return st.dictionaries(text, json_values, max_size=4).map(_struct)
    if name == "google.protobuf.Value":
        return json_values.map(lambda v: _struct({"v": v}).fields["v"])
    if name == "google.protobuf.Any" or depth > 2:
        return st.just(cls())
    optional = {}
    for field in descriptor.fields:
        optional[field.name] = _field(field, depth)
    return st.fixed_dictionaries({}, optional=optional).map(lambda v: _build(cls, v))


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    with contextlib.suppress(ValueError, TypeError):
        out.update(value)
    return out


def _field(field: Any, depth: int) -> st.SearchStrategy[Any]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key = _scalar(field.message_type.fields_by_name["key"])
        value_field = field.message_type.fields_by_name["value"]
        value = (
            messages(value_field.message_type, depth + 1)
            if value_field.message_type is not None
            else _scalar(value_field)
        )
        return st.dictionaries(key, value, max_size=3)
    single = (
        messages(field.message_type, depth + 1)
        if field.message_type is not None
        else _scalar(field)
    )
    if field.is_repeated:
        return st.lists(single, max_size=3)
    return single


def _build(cls: type[Message], values: dict[str, Any]) -> Message:
    message = cls()
    for name, value in values.items():
        field = cls.DESCRIPTOR.fields_by_name[name]
        target = getattr(message, name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for key, item in value.items():
                if isinstance(item, Message):
                    target[key].CopyFrom(item)
                else:
                    target[key] = item
        elif field.is_repeated:
            for item in value:
                if isinstance(item, Message):
                    target.add().CopyFrom(item)
                else:
                    target.append(item)
        elif isinstance(value, Message):
            target.CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


HEADER_KEYS = [
    "x-alis-operation-id",
    "x-lro-wait-id",
    "x-lro-wait-outcome",
    "authorization",
    "traceparent",
    "x-cloud-trace-context",
    "x-request-id",
]

header_values = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + "-_/.: =;", max_size=80).map(str.strip),
    st.uuids().map(str),
    st.sampled_from(["done", "timeout", "error", "bogus", "1", "-1", "99999999999999999999"]),
)

headers = st.dictionaries(st.sampled_from(HEADER_KEYS), header_values, max_size=3)

CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/octet-stream",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "application/grpc",
    "",
    "garbage",
]
