"""Fuzzed bad input over gRPC and HTTP: every answer is a well-formed error with a client
code (never INTERNAL or UNKNOWN, never a crash), and the server still serves afterwards.

Hypothesis generates the inputs (derandomized: the same inputs on every run, so CI is
stable); each example sends a batch of them to one server shared by the module. The
figures line gives the number of inputs tried per front.
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import threading
from collections.abc import Iterator
from typing import Any

import fuzzing
import grpc
import pytest
import requests
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability import SCALE, create_job, quick_config

from lro_server._proto.lro.databricks.v1 import jobs_pb2, jobs_pb2_grpc
from lro_server.core.operations import ServiceLimits
from lro_server.testing.databricks_sim import SimulatorThread
from lro_server.testing.server_thread import ServerThread

pytestmark = pytest.mark.xdist_group("fuzz_inputs")

#: Request size limit of the fuzzed server (small, so oversized inputs are cheap).
LIMIT = 64 * 1024
BATCH = 25
#: Examples per generating test (each example sends a batch of inputs).
EXAMPLES = {
    "grpc_operations": 130 * SCALE,
    "grpc_messages": 60 * SCALE,
    "grpc_bytes": 50 * SCALE,
    "http_rest": 85 * SCALE,
    "http_gateway": 90 * SCALE,
}
SETTINGS = settings(
    max_examples=EXAMPLES["grpc_operations"],
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
#: Codes a bad input may get. INTERNAL, UNKNOWN, DATA_LOSS and UNAVAILABLE mean a bug.
CLIENT_CODES = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNIMPLEMENTED,
}
HTTP_CLIENT_STATUSES = {200, 400, 403, 404, 405, 409, 413, 429, 501}

tried: collections.Counter[str] = collections.Counter()
#: Inputs per example of the tests whose batch size does not depend on the server.
PER_EXAMPLE = {"grpc_operations": 6 * 4 + 4, "grpc_bytes": BATCH, "http_rest": 6 * 4 + 4 + 2}


def _planned(name: str, methods: int) -> int:
    per_example = {**PER_EXAMPLE, "grpc_messages": methods, "http_gateway": BATCH}
    return EXAMPLES[name] * per_example[name]


def _report(figures, state: Fuzzed, name: str, front: str, before: int, **extra: object) -> None:  # type: ignore[no-untyped-def]
    """Report a test's inputs and check that every planned input was sent and answered."""
    sent = tried[front] - before
    figures(**extra, inputs_tried=sent, internal_errors=0)
    assert sent == _planned(name, len(state.methods))


class Fuzzed:
    """The module's server, its simulator, and operations that exist."""

    def __init__(self, server: ServerThread, sim: SimulatorThread, known: list[str]) -> None:
        self.server = server
        self.sim = sim
        self.known = known
        self.channel = grpc.insecure_channel(server.grpc_target)
        self.pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="fuzz-http")
        self.sessions = threading.local()
        self.methods = [
            m for methods in server.application.registry.services().values() for m in methods
        ]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """One server for every fuzz test of the module, with a few real operations."""
    directory = tmp_path_factory.mktemp("fuzz")
    with SimulatorThread() as sim:
        config = quick_config(
            f"sqlite:///{directory}/lro.db",
            sim.url,
            max_request_bytes=LIMIT,
            limits=ServiceLimits(max_wait_seconds=0.05),
        )
        with ServerThread(config) as server:
            job_id = create_job(sim, "fuzz")
            sim.set_timeline("runs", "hold", job_id=job_id)
            with grpc.insecure_channel(server.grpc_target) as channel:
                jobs = jobs_pb2_grpc.JobsStub(channel)
                known = [jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id)).name for _ in range(3)]
            state = Fuzzed(server, sim, known)
            yield state
            state.channel.close()
            state.pool.shutdown()
            _still_serves(state)


def _still_serves(state: Fuzzed) -> None:
    """A normal request works: the server survived."""
    with grpc.insecure_channel(state.server.grpc_target) as channel:
        ops = operations_pb2_grpc.OperationsStub(channel)
        ops.ListOperations(operations_pb2.ListOperationsRequest(name="operations"), timeout=10)
    response = requests.get(state.server.http_url + "/v1/operations", timeout=10)
    assert response.status_code == 200


def _check_grpc(error: grpc.RpcError | None, what: str) -> None:
    if error is None:
        return
    code = error.code()  # type: ignore[attr-defined]
    assert code in CLIENT_CODES, f"{what}: {code} {error.details()}"  # type: ignore[attr-defined]
    assert error.details(), what  # type: ignore[attr-defined]
    details = error.details()  # type: ignore[attr-defined]
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details:
        return  # grpc's own message size limit: no details to attach
    if code == grpc.StatusCode.UNIMPLEMENTED and details == "Method not found!":
        return  # grpc's own answer for a method nobody serves
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, f"{what}: no google.rpc.Status"
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert len(infos) == 1, f"{what}: {status}"


def _check_http(response: requests.Response, what: str) -> None:
    tried["http"] += 1
    assert response.status_code in HTTP_CLIENT_STATUSES, (
        f"{what}: {response.status_code} {response.text[:300]}"
    )
    body = response.json()
    if response.status_code >= 400:
        error = body["error"]
        assert error["code"] == response.status_code and error["message"], what
        assert error["status"] not in ("INTERNAL", "UNKNOWN"), what


# -- gRPC -----------------------------------------------------------------------------------


def _grpc_batch(state: Fuzzed, calls: list[tuple[str, bytes, dict[str, str]]]) -> None:
    """Send ``calls`` concurrently (futures), then check every answer."""
    futures = [
        (
            path,
            payload,
            metadata,
            state.channel.unary_unary(path).future(
                payload, metadata=tuple(metadata.items()), timeout=20
            ),
        )
        for path, payload, metadata in calls
    ]
    for path, payload, metadata, future in futures:
        error: grpc.RpcError | None = None
        try:
            future.result()
        except grpc.RpcError as exc:
            error = exc
        tried["grpc"] += 1
        _check_grpc(error, f"{path} {payload[:200]!r} {metadata}")


OPS = "/google.longrunning.Operations/"


@st.composite
def operations_batches(draw: Any, known: list[str]) -> list[tuple[str, bytes, dict[str, str]]]:
    """Each drawn name goes to Get, Wait, Cancel and Delete; plus a few listings."""
    calls: list[tuple[str, bytes, dict[str, str]]] = []
    for name in draw(st.lists(fuzzing.operation_names(known), min_size=6, max_size=6)):
        headers = draw(fuzzing.headers)
        wait = operations_pb2.WaitOperationRequest(name=name)
        if draw(st.booleans()):
            wait.timeout.CopyFrom(draw(fuzzing.durations()))
        calls += [
            (
                OPS + "GetOperation",
                operations_pb2.GetOperationRequest(name=name).SerializeToString(),
                headers,
            ),
            (OPS + "WaitOperation", wait.SerializeToString(), headers),
            (
                OPS + "CancelOperation",
                operations_pb2.CancelOperationRequest(name=name).SerializeToString(),
                headers,
            ),
            (
                OPS + "DeleteOperation",
                operations_pb2.DeleteOperationRequest(name=name).SerializeToString(),
                headers,
            ),
        ]
    for _ in range(4):
        listing = operations_pb2.ListOperationsRequest(
            name=draw(st.one_of(st.just("operations"), st.just(""), fuzzing.text)),
            filter=draw(fuzzing.filters),
            page_size=draw(fuzzing.page_sizes),
            page_token=draw(fuzzing.page_tokens),
        )
        calls.append((OPS + "ListOperations", listing.SerializeToString(), draw(fuzzing.headers)))
    return calls


def test_grpc_operations_methods(fuzzed, figures):
    @SETTINGS
    @given(batch=operations_batches(fuzzed.known))
    def run(batch: list[tuple[str, bytes, dict[str, str]]]) -> None:
        _grpc_batch(fuzzed, batch)

    before = tried["grpc"]
    run()
    _report(figures, fuzzed, "grpc_operations", "grpc", before)


def test_grpc_every_method_random_messages(fuzzed, figures):
    methods = fuzzed.methods
    strategies = [fuzzing.messages(m.request_type.DESCRIPTOR) for m in methods]

    @st.composite
    def batches(draw: Any) -> list[tuple[str, bytes, dict[str, str]]]:
        # One random request for every method served, with random headers.
        return [
            (m.path, draw(strategy).SerializeToString(), draw(fuzzing.headers))
            for m, strategy in zip(methods, strategies, strict=True)
        ]

    @settings(SETTINGS, max_examples=EXAMPLES["grpc_messages"])
    @given(batch=batches())
    def run(batch: list[tuple[str, bytes, dict[str, str]]]) -> None:
        _grpc_batch(fuzzed, batch)

    before = tried["grpc"]
    run()
    _report(figures, fuzzed, "grpc_messages", "grpc", before, methods=len(methods))


def test_grpc_undecodable_bytes_and_unknown_methods(fuzzed, figures):
    paths = [m.path for m in fuzzed.methods]

    @settings(SETTINGS, max_examples=EXAMPLES["grpc_bytes"])
    @given(
        batch=st.lists(
            st.tuples(
                st.one_of(st.sampled_from(paths), st.just("/lro.databricks.v1.Jobs/Nope")),
                st.binary(max_size=300),
                st.just({}),
            ),
            min_size=BATCH,
            max_size=BATCH,
        )
    )
    def run(batch: list[tuple[str, bytes, dict[str, str]]]) -> None:
        _grpc_batch(fuzzed, batch)

    before = tried["grpc"]
    run()
    _report(figures, fuzzed, "grpc_bytes", "grpc", before)


def test_grpc_request_size_limit(fuzzed):
    request = operations_pb2.GetOperationRequest(name="operations/" + "x" * (LIMIT + 10))
    with pytest.raises(grpc.RpcError) as caught:
        operations_pb2_grpc.OperationsStub(fuzzed.channel).GetOperation(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in caught.value.details()


# -- HTTP -----------------------------------------------------------------------------------


HttpCall = tuple[str, str, dict[str, Any], bytes | None, dict[str, str]]


def _http_batch(state: Fuzzed, calls: list[HttpCall]) -> None:
    """Send ``calls`` from a few threads, then check every answer."""
    base = state.server.http_url

    def send(call: HttpCall) -> requests.Response:
        method, path, params, body, headers = call
        session = state.sessions.__dict__.setdefault("session", requests.Session())
        return session.request(
            method, base + path, params=params, data=body, headers=headers, timeout=20
        )

    for call, response in zip(calls, state.pool.map(send, calls), strict=True):
        _check_http(response, f"{call[0]} {call[1]} {call[2]} {call[3]!r:.200} {call[4]}")


WAIT_TIMEOUTS = ["1s", "0.01s", "-1s", "1e9s", "s", "99999999999s", "0.000000001s", "3.5"]


@st.composite
def rest_batches(draw: Any, known: list[str]) -> list[HttpCall]:
    """Each drawn name goes to GET, DELETE, :cancel and :wait; plus listings and odd paths."""
    json_headers = {"Content-Type": "application/json"}
    calls: list[HttpCall] = []
    for name in draw(st.lists(fuzzing.operation_names(known), min_size=6, max_size=6)):
        tail = name.split("/", 1)[1] if name.startswith("operations/") else name
        path = requests.utils.requote_uri("/v1/operations/" + tail)
        wait_body = draw(
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {},
                    optional={
                        "timeout": st.one_of(st.sampled_from(WAIT_TIMEOUTS), fuzzing.json_values),
                        "name": fuzzing.json_values,
                    },
                ),
                fuzzing.json_values,
            )
        )
        wait = None if wait_body is None else json.dumps(wait_body).encode()
        calls += [
            ("GET", path, {}, None, json_headers),
            ("DELETE", path, {}, None, json_headers),
            ("POST", path + ":cancel", {}, None, json_headers),
            ("POST", path + ":wait", {}, wait, json_headers),
        ]
    keys = ["pageSize", "page_size", "filter", "pageToken", "page_token", "name"]
    for _ in range(4):
        params = {
            key: draw(st.one_of(fuzzing.text, fuzzing.page_sizes.map(str), fuzzing.filters))
            for key in draw(st.lists(st.sampled_from(keys), max_size=4))
        }
        calls.append(("GET", "/v1/operations", params, None, {}))
    for _ in range(2):
        method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]))
        path = draw(st.sampled_from(["/v1/operations/x:explode", "/v1/", "/v2/operations", "/"]))
        calls.append((method, path, {}, None, {}))
    return calls


def test_http_rest_routes(fuzzed, figures):
    @settings(SETTINGS, max_examples=EXAMPLES["http_rest"])
    @given(batch=rest_batches(fuzzed.known))
    def run(batch: list[HttpCall]) -> None:
        _http_batch(fuzzed, batch)

    before = tried["http"]
    run()
    _report(figures, fuzzed, "http_rest", "http", before)


def test_http_gateway_bodies_content_types_and_headers(fuzzed, figures):
    methods = fuzzed.methods

    @st.composite
    def inputs(draw: Any) -> HttpCall:
        method = draw(st.sampled_from(methods))
        path = method.path
        if draw(st.integers(0, 9)) == 0:
            path = draw(st.sampled_from(["/lro.databricks.v1.Jobs/Nope", "/nope.Svc/Get", "/a/b"]))
        kind = draw(st.integers(0, 5))
        if kind == 0:  # a random message of the right type, as proto3 JSON
            message = draw(fuzzing.messages(method.request_type.DESCRIPTOR))
            try:
                body = json_format.MessageToJson(message).encode()
            except (ValueError, json_format.Error):
                body = b"{}"
        elif kind == 1:  # field names right, values of any type
            names = [f.json_name for f in method.request_type.DESCRIPTOR.fields]
            value = draw(st.dictionaries(st.sampled_from(names), fuzzing.json_values, max_size=4))
            body = json.dumps(value).encode()
        elif kind == 2:  # any JSON at all
            body = json.dumps(draw(fuzzing.json_values)).encode()
        elif kind == 3:  # not JSON
            body = draw(st.binary(max_size=200))
        elif kind == 4:  # deeply nested
            depth = draw(st.integers(100, 5000))
            body = ("[" * depth + "]" * depth).encode()
        else:  # text that almost is JSON
            body = draw(fuzzing.text).encode("utf-8", "surrogatepass")
        headers = dict(draw(fuzzing.headers))
        content_type = draw(st.sampled_from(fuzzing.CONTENT_TYPES))
        if content_type:
            headers["Content-Type"] = content_type
        return "POST", path, {}, body, headers

    @settings(SETTINGS, max_examples=EXAMPLES["http_gateway"])
    @given(batch=st.lists(inputs(), min_size=BATCH, max_size=BATCH))
    def run(batch: list[HttpCall]) -> None:
        _http_batch(fuzzed, batch)

    before = tried["http"]
    run()
    _report(figures, fuzzed, "http_gateway", "http", before, methods=len(methods))


def test_http_request_size_limit(fuzzed):
    body = json.dumps({"name": "operations/" + "x" * LIMIT}).encode()
    response = requests.post(
        fuzzed.server.http_url + "/google.longrunning.Operations/GetOperation",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code in (400, 413)
    error = response.json()["error"]
    assert str(LIMIT) in error["message"] and "larger than" in error["message"]


def test_ids_cannot_redirect_databricks_calls(fuzzed):
    """Regression: a warehouse or pipeline id is part of a REST path; ``..`` in it reached
    another Databricks endpoint with the server's credentials."""
    from lro_server._proto.lro.databricks.v1 import pipelines_pb2, warehouses_pb2

    before = len(fuzzed.sim.call_log())
    for path, request in [
        (
            "/lro.databricks.v1.Warehouses/Stop",
            warehouses_pb2.StopWarehouseRequest(id="../../../2.2/jobs/runs/cancel"),
        ),
        (
            "/lro.databricks.v1.Pipelines/StartUpdate",
            pipelines_pb2.StartUpdateRequest(pipeline_id="x/../../../2.2/jobs/create"),
        ),
        ("/lro.databricks.v1.Pipelines/Stop", pipelines_pb2.StopPipelineRequest(pipeline_id="a?b")),
    ]:
        with pytest.raises(grpc.RpcError) as caught:
            fuzzed.channel.unary_unary(path)(request.SerializeToString(), timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid Databricks id" in caught.value.details()
    assert all("jobs" not in c.path for c in fuzzed.sim.call_log()[before:])


def test_every_public_method_gets_over_10000_inputs_in_all(fuzzed, figures):
    """The budget of the generating tests above (they may run on different workers)."""
    planned = {name: _planned(name, len(fuzzed.methods)) for name in EXAMPLES}
    total = sum(planned.values())
    figures(methods=len(fuzzed.methods), planned_inputs=total, **planned)
    assert total >= 10_000
    _still_serves(fuzzed)
