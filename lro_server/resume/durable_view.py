"""What a durable operation shows: its MethodMetadata, and JSON values in and out of protos.

``MethodMetadata.steps`` is rewritten with the operation on every commit, so it is capped:
the last :data:`MAX_SHOWN_STEPS` positions plus every one still waiting or running (a
method of 1,000 steps does not rewrite a list of 1,000 entries per step; the journal
keeps them all).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from google.longrunning import operations_pb2
from google.protobuf import descriptor_pool, json_format, message_factory, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from lro_server._proto.lro.durable.v1 import methods_pb2
from lro_server.core import rfc3339
from lro_server.core.errors import Code
from lro_server.core.record import OperationRecord
from lro_server.resume import durable_journal as journal
from lro_server.resume.durable_journal import Fold, Slot

#: Positions shown in the metadata besides those still waiting or running.
MAX_SHOWN_STEPS = 50

Kind = methods_pb2.Step.Kind
StepState = methods_pb2.Step.State
_KINDS = {
    journal.CALL: Kind.CALL,
    journal.STEP: Kind.STEP,
    journal.SLEEP: Kind.SLEEP,
    journal.PROMISE: Kind.PROMISE,
}
# Plain ints: an enum wrapper's attribute lookup costs more than the rest of a step's view.
_WAITING, _RUNNING, _SUCCEEDED, _FAILED, _CANCELLED = (
    StepState.WAITING,
    StepState.RUNNING,
    StepState.SUCCEEDED,
    StepState.FAILED,
    StepState.CANCELLED,
)
_INT64 = (FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64)
_PLAIN_JSON = frozenset(
    {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}
)


def step_state(slot: Slot, now_us: int, elapsed: bool) -> methods_pb2.Step.State.ValueType:
    """The Step.State of a position."""
    if slot.kind == journal.SLEEP:
        return _SUCCEEDED if elapsed or slot.until_us <= now_us else _WAITING
    if not slot.done:
        return _RUNNING if slot.kind == journal.CALL else _WAITING
    if slot.error is None:
        return _SUCCEEDED
    if slot.kind == journal.CALL and slot.error.get("code") == Code.CANCELLED:
        return _CANCELLED
    return _FAILED


def steps(fold: Fold, now_us: int, recorded_last: int) -> list[methods_pb2.Step]:
    """The metadata's steps: the last MAX_SHOWN_STEPS plus every unfinished one."""
    shown: list[methods_pb2.Step] = []
    last = fold.last_position
    recent = {p for p in range(max(0, last - MAX_SHOWN_STEPS * 2), last + 1) if p in fold.slots}
    recent = set(sorted(recent)[-MAX_SHOWN_STEPS:])
    for position in sorted(recent | fold.open):
        slot = fold.slots[position]
        state = step_state(slot, now_us, position < recorded_last)
        if position not in recent and state in (_SUCCEEDED, _FAILED):
            continue
        cached = fold.shown.get(position)
        if cached is not None and cached[0] == state:
            shown.append(cached[1])
            continue
        step = methods_pb2.Step(
            position=position,
            kind=_KINDS[slot.kind],
            name=slot.name,
            operation=slot.child,
            state=state,
            attempts=slot.attempts,
        )
        if slot.error is not None:
            step.error.code = int(slot.error.get("code", Code.UNKNOWN))
            step.error.message = str(slot.error.get("message", ""))
        fold.shown[position] = (state, step)
        shown.append(step)
    return shown


def waiting_on(children: Iterable[str], promises: Iterable[str], wake_at_us: int) -> list[str]:
    """``waiting_on``: child names, promise ids, and the timer as an RFC 3339 time."""
    listed = [*sorted(children), *sorted(promises)]
    if wake_at_us:
        listed.append(rfc3339.from_micros(wake_at_us))
    return listed


def metadata(
    record: OperationRecord,
    *,
    method: str,
    labels: Mapping[str, str],
    state: str,
    message: str,
    shown: list[methods_pb2.Step],
    waits: list[str],
    now_us: int,
    ended: bool = False,
) -> methods_pb2.MethodMetadata:
    """The operation's MethodMetadata."""
    built = methods_pb2.MethodMetadata(
        method=method,
        state=state,
        message=message,
        steps=shown,
        waiting_on=waits,
        create_time=_timestamp(record.create_time_us),
        update_time=_timestamp(now_us),
        labels=dict(labels),
    )
    if ended:
        built.end_time.CopyFrom(_timestamp(now_us))
    return built


# -- JSON values ---------------------------------------------------------------------------


def child_outcome(child: operations_pb2.Operation) -> dict[str, Any]:
    """A CHILD_DONE event's outcome member: ``response`` (a dict) or ``error``."""
    if child.HasField("error"):
        return {"error": journal.error_json(child.error.code, child.error.message)}
    if not child.HasField("response"):
        return {"response": {}}
    response = unpacked(child.response)
    size = journal.oversize(json.dumps(response)) if child.response.ByteSize() > 4096 else 0
    if size:
        # Kept in the journal it would make every commit of the parent fail: the parent
        # learns why instead, and the response stays readable on the child.
        message = (
            f"the child's response is {size:,} bytes of JSON, over the limit of "
            f"{journal.MAX_OUTCOME_BYTES:,} a method can receive; read it from the child"
        )
        return {"error": journal.error_json(Code.FAILED_PRECONDITION, message)}
    return {"response": response}


def unpacked(packed: Any) -> Any:
    """An Any as plain JSON: proto field names, 64-bit integers as ints, Struct as a dict."""
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(packed.TypeName())
    except KeyError:
        return {}
    message = message_factory.GetMessageClass(descriptor)()
    packed.Unpack(message)
    return plain(message)


def plain(message: Message) -> Any:
    """``message`` as plain JSON (see :func:`unpacked`)."""
    value = json_format.MessageToDict(message, preserving_proto_field_name=True)
    if message.DESCRIPTOR.full_name in _PLAIN_JSON:
        return integral(value)
    return _with_ints(value, message.DESCRIPTOR)


def _with_ints(value: Any, descriptor: Any) -> Any:
    if descriptor.full_name in _PLAIN_JSON:
        return integral(value)
    if not isinstance(value, dict):
        return value
    out = dict(value)
    for field in descriptor.fields:
        if field.name not in out:
            continue
        item = out[field.name]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            out[field.name] = {k: _field(v, value_field) for k, v in item.items()}
        elif field.is_repeated:
            out[field.name] = [_field(v, field) for v in item]
        else:
            out[field.name] = _field(item, field)
    return out


def _field(value: Any, field: FieldDescriptor) -> Any:
    if field.cpp_type in _INT64 and isinstance(value, str):
        return int(value)
    if field.message_type is not None:
        return _with_ints(value, field.message_type)
    return value


def integral(value: Any) -> Any:
    """JSON from a Struct with whole numbers as ints (Struct numbers are doubles)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral(v) for v in value]
    return value


def to_struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    """A JSON object as a Struct."""
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


def to_value(value: Any) -> struct_pb2.Value:
    """A JSON value as a google.protobuf.Value."""
    message = struct_pb2.Value()
    json_format.ParseDict(value, message)
    return message


def _timestamp(micros: int) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromMicroseconds(micros)
    return stamp
