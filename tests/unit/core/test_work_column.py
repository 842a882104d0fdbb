"""The work column: typed fields and payload in one JSON text, read back in either form."""

from __future__ import annotations

import json

import pytest
from google.longrunning import operations_pb2

from lro_server.core.errors import FailedPrecondition, InvalidArgument
from lro_server.core.record import MAX_WORK_BYTES, OperationRecord
from lro_server.core.work_column import WorkFields, read_work, writable_work


def _record(**fields: object) -> OperationRecord:
    return OperationRecord(operation=operations_pb2.Operation(name="operations/a"), **fields)  # type: ignore[arg-type]


def test_fields_and_payload_round_trip_byte_for_byte() -> None:
    payload = '{"action":"run_now","request":{"job_id":1,"s":"a,\\"payload\\":x"},"entity":{}}'
    record = _record(
        family="jobs",
        deadline_us=123,
        cancel_requested=True,
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        payload=payload,
    )
    column = writable_work(record)

    assert json.loads(column)["payload"] == json.loads(payload)
    assert read_work(column) == WorkFields(
        family="jobs",
        deadline_us=123,
        cancel_requested=True,
        traceparent=record.traceparent,
        payload=payload,
    )


def test_a_value_that_looks_like_the_payload_key_cannot_confuse_the_reader() -> None:
    record = _record(family='x,"payload":{}', traceparent=',"payload":', payload='{"a":1}')
    fields = read_work(writable_work(record))
    assert (fields.family, fields.traceparent, fields.payload) == (
        'x,"payload":{}',
        ',"payload":',
        '{"a":1}',
    )


def test_the_flat_form_of_older_rows_is_read() -> None:
    legacy = {
        "family": "jobs",
        "action": "run_now",
        "request": {"job_id": 7},
        "timeout_seconds": 1200,
        "deadline_us": 99,
        "entity": {"run_id": 5},
        "cancel_requested": True,
        "cancel_sent": True,
        "traceparent": "tp",
    }
    fields = read_work(json.dumps(legacy))
    assert (fields.family, fields.deadline_us, fields.cancel_requested, fields.traceparent) == (
        "jobs",
        99,
        True,
        "tp",
    )
    assert json.loads(fields.payload) == {
        "action": "run_now",
        "request": {"job_id": 7},
        "entity": {"run_id": 5},
        "cancel_sent": True,
    }


@pytest.mark.parametrize("payload", ["", "not json", "[1]", "1", "null"])
def test_a_payload_that_is_not_a_json_object_is_refused(payload: str) -> None:
    with pytest.raises(InvalidArgument):
        writable_work(_record(payload=payload))


def test_an_oversized_payload_names_the_limit() -> None:
    with pytest.raises(FailedPrecondition) as refused:
        writable_work(_record(payload=json.dumps({"b": "x" * MAX_WORK_BYTES})))
    assert refused.value.metadata["field"] == "work"


@pytest.mark.parametrize("column", ["", "[]", '{"v":2,"family":"x"}'])
def test_an_unreadable_column_is_a_clear_error(column: str) -> None:
    with pytest.raises(FailedPrecondition, match="unreadable"):
        read_work(column)
