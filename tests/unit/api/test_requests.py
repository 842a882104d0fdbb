"""Start requests → Databricks bodies: invalid Durations (and Struct numbers JSON cannot
hold) are INVALID_ARGUMENT, not a crash.

Regression tests for inputs the fuzz test (tests/integration/test_fuzz_inputs.py) found:
a timeout whose seconds and nanos disagree in sign, or lie outside the Duration range, is
legal on the wire but made json_format raise, which surfaced as INTERNAL.
"""

from __future__ import annotations

import math

import pytest
from google.protobuf import duration_pb2, json_format, struct_pb2

from lro_server._proto.lro.databricks.v1 import chains_pb2, jobs_pb2
from lro_server.api.chains import _steps
from lro_server.api.requests import duration_seconds, json_value, start_args, struct_json
from lro_server.core.errors import InvalidArgument
from lro_server.resume.durable_view import integral

INVALID = [
    (5, -1),  # sign mismatch
    (-5, 1),
    (0, 1_000_000_000),  # nanos out of range
    (315_576_000_001, 0),  # beyond 10,000 years
    (-(2**63), 0),
]


@pytest.mark.parametrize(("seconds", "nanos"), INVALID)
def test_invalid_durations_are_refused(seconds, nanos):
    with pytest.raises(InvalidArgument) as caught:
        duration_seconds(duration_pb2.Duration(seconds=seconds, nanos=nanos), "timeout")
    assert caught.value.metadata == {"field": "timeout"}


@pytest.mark.parametrize(("seconds", "nanos"), INVALID)
def test_start_request_with_invalid_timeout_is_invalid_argument(seconds, nanos):
    request = jobs_pb2.RunNowRequest(job_id=1)
    request.timeout.seconds, request.timeout.nanos = seconds, nanos
    with pytest.raises(InvalidArgument):
        start_args(request)


@pytest.mark.parametrize(("seconds", "nanos"), INVALID)
def test_chain_step_with_invalid_timeout_is_invalid_argument(seconds, nanos):
    step = jobs_pb2.RunNowRequest(job_id=1)
    step.timeout.seconds, step.timeout.nanos = seconds, nanos
    request = chains_pb2.RunChainRequest(steps=[chains_pb2.ChainStep(name="a", run_now=step)])
    with pytest.raises(InvalidArgument) as caught:
        _steps(request)
    assert caught.value.metadata["field"] == "steps[0].run_now.timeout"


def test_valid_timeout_and_body():
    request = jobs_pb2.RunNowRequest(job_id=7, request_id="r1")
    request.timeout.FromSeconds(90)
    args = start_args(request)
    assert args.timeout_seconds == 90 and args.request_id == "r1"
    assert args.body == {"job_id": 7}


def test_negative_duration_with_negative_nanos_is_valid_but_not_a_timeout():
    assert duration_seconds(duration_pb2.Duration(seconds=-1, nanos=-5), "t") < 0
    request = jobs_pb2.RunNowRequest(job_id=1)
    request.timeout.seconds, request.timeout.nanos = -1, -5
    with pytest.raises(InvalidArgument, match="must be positive"):
        start_args(request)


def test_a_struct_reads_as_json_with_whole_numbers_as_ints() -> None:
    struct = struct_pb2.Struct()
    struct.update({"n": 3, "x": 2.5, "big": 2.0**60, "s": "é", "t": True, "none": None})
    struct.update({"nested": {"list": [1, 1.5, {"deep": [None, "x"]}], "empty": {}}})

    body = struct_json(struct, "input")

    assert body == {
        "n": 3,
        "x": 2.5,
        "big": 2.0**60,
        "s": "é",
        "t": True,
        "none": None,
        "nested": {"list": [1, 1.5, {"deep": [None, "x"]}], "empty": {}},
    }
    assert type(body["n"]) is int and type(body["big"]) is float
    assert body == integral(json_format.MessageToDict(struct))  # what proto3 JSON says


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_a_number_json_cannot_hold_is_invalid(number: float) -> None:
    struct = struct_pb2.Struct()
    struct.update({"ok": 1, "deep": {"list": [0, 0]}})
    struct["deep"]["list"].values[1].number_value = number

    with pytest.raises(InvalidArgument) as refused:
        struct_json(struct, "input")
    assert refused.value.metadata == {"field": "input"}
    value = struct_pb2.Value(number_value=number)
    with pytest.raises(InvalidArgument):
        json_value(value, "value")


def test_an_unset_value_reads_as_null() -> None:
    struct = struct_pb2.Struct()
    struct.fields["unset"].CopyFrom(struct_pb2.Value())

    assert struct_json(struct, "input") == {"unset": None}
    assert json_value(struct_pb2.Value(string_value="s"), "value") == "s"
