"""Every bad input is refused with the right code and an ErrorInfo, over gRPC and HTTP."""

from __future__ import annotations

from typing import Any

import grpc
import requests
from google.longrunning import operations_pb2
from google.protobuf import duration_pb2, json_format
from google.protobuf.message import Message
from lro_steps import error_info, grpc_status, http_error_info, start_held

from lro_server._proto.lro.databricks.v1 import jobs_pb2
from lro_server.http.errors import HTTP_STATUS

OPS = "google.longrunning.Operations"
JOBS = "lro.databricks.v1.Jobs"
UNKNOWN = "operations/0b7e3c1a-5f0e-4d9b-9a51-6f0c2d1e8a47"
INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND

MALFORMED_NAMES = [
    "",
    "operations/",
    "operations/not-a-uuid",
    "operations/5155a75a-edd0-11f1-8c3b-0242ac120002",  # a uuid1, not a uuid4
    "projects/p/operations/0b7e3c1a-5f0e-4d9b-9a51-6f0c2d1e8a47",
    "operations/0B7E3C1A-5F0E-4D9B-9A51-6F0C2D1E8A47",
    "operations/" + "a" * 200,
]


def _name_cases() -> list[tuple[str, str, Message, grpc.StatusCode]]:
    cases = []
    for method, cls in [
        ("GetOperation", operations_pb2.GetOperationRequest),
        ("CancelOperation", operations_pb2.CancelOperationRequest),
        ("DeleteOperation", operations_pb2.DeleteOperationRequest),
        ("WaitOperation", operations_pb2.WaitOperationRequest),
    ]:
        for name in MALFORMED_NAMES:
            cases.append((f"{method} {name[:30]!r}", f"/{OPS}/{method}", cls(name=name), INVALID))
        cases.append((f"{method} unknown", f"/{OPS}/{method}", cls(name=UNKNOWN), NOT_FOUND))
    return cases


def _seconds(value: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(value * 1e9))
    return duration


LIST = f"/{OPS}/ListOperations"
ListRequest = operations_pb2.ListOperationsRequest
RUN_NOW = f"/{JOBS}/RunNow"
SUBMIT = f"/{JOBS}/Submit"
WAIT = f"/{OPS}/WaitOperation"

#: (id, method path, request, expected code, ErrorInfo metadata["field"] or None)
CASES: list[tuple[str, str, Message, grpc.StatusCode, str | None]] = [
    *[(i, p, r, c, "name") for i, p, r, c in _name_cases() if c == INVALID],
    *[(i, p, r, c, None) for i, p, r, c in _name_cases() if c == NOT_FOUND],
    ("list name", LIST, operations_pb2.ListOperationsRequest(name="projects/p"), INVALID, "name"),
    ("list name op", LIST, operations_pb2.ListOperationsRequest(name=UNKNOWN), INVALID, "name"),
    ("page_size<0", LIST, operations_pb2.ListOperationsRequest(page_size=-1), INVALID, "page_size"),
    (
        "garbage token",
        LIST,
        operations_pb2.ListOperationsRequest(page_token="not a token"),
        INVALID,
        "page_token",
    ),
    (
        "filter syntax",
        LIST,
        ListRequest(filter="done = "),
        INVALID,
        "filter",
    ),
    (
        "filter field",
        LIST,
        ListRequest(filter="foo = 1"),
        INVALID,
        "filter",
    ),
    (
        "filter type",
        LIST,
        ListRequest(filter="done = 3"),
        INVALID,
        "filter",
    ),
    ("filter paren", LIST, ListRequest(filter="(done"), INVALID, "filter"),
    ("filter op", LIST, ListRequest(filter="done AND"), INVALID, "filter"),
    (
        "filter time",
        LIST,
        ListRequest(filter='create_time > "yesterday"'),
        INVALID,
        "filter",
    ),
    (
        "wait timeout<0",
        WAIT,
        operations_pb2.WaitOperationRequest(name=UNKNOWN, timeout=_seconds(-1)),
        INVALID,
        "timeout",
    ),
    ("job_id missing", RUN_NOW, jobs_pb2.RunNowRequest(), INVALID, "job_id"),
    ("job_id<0", RUN_NOW, jobs_pb2.RunNowRequest(job_id=-5), INVALID, "job_id"),
    (
        "timeout<0",
        RUN_NOW,
        jobs_pb2.RunNowRequest(job_id=1, timeout=_seconds(-1)),
        INVALID,
        "timeout",
    ),
    (
        "timeout>7d",
        RUN_NOW,
        jobs_pb2.RunNowRequest(job_id=1, timeout=_seconds(8 * 24 * 3600)),
        INVALID,
        "timeout",
    ),
    (
        "request_id>128",
        RUN_NOW,
        jobs_pb2.RunNowRequest(job_id=1, request_id="r" * 129),
        INVALID,
        "request_id",
    ),
    (
        "request_id unprintable",
        RUN_NOW,
        jobs_pb2.RunNowRequest(job_id=1, request_id="a\nb"),
        INVALID,
        "request_id",
    ),
    ("submit no tasks", SUBMIT, jobs_pb2.SubmitRunRequest(run_name="x"), INVALID, "tasks"),
]


def _grpc_error(channel: grpc.Channel, path: str, request: Message) -> grpc.RpcError:
    call = channel.unary_unary(path, request_serializer=type(request).SerializeToString)
    try:
        call(request, timeout=10)
    except grpc.RpcError as error:
        return error
    raise AssertionError(f"{path} accepted {request}")


def _gateway(server: Any, path: str, body: str | bytes, **headers: str) -> requests.Response:
    headers.setdefault("Content-Type", "application/json")
    return requests.post(server.http_url + path, data=body, headers=headers, timeout=10)


def _check_http(response: requests.Response, code: grpc.StatusCode) -> dict[str, Any]:
    expected = HTTP_STATUS[code.value[0]]
    assert response.status_code == expected, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"]["code"] == expected
    assert body["error"]["status"] == code.name
    return http_error_info(body)


def test_bad_input_over_grpc(channel):
    wrong = {}
    for case, path, request, code, field in CASES:
        error = _grpc_error(channel, path, request)
        info = error_info(grpc_status(error))
        got = (error.code(), info.domain, info.metadata.get("field") if field else None)
        if got != (code, "lro.databricks.v1", field):
            wrong[case] = got
    assert wrong == {}


def test_bad_input_over_the_http_gateway(server):
    wrong = {}
    for case, path, request, code, field in CASES:
        response = _gateway(server, path, json_format.MessageToJson(request))
        try:
            info = _check_http(response, code)
            assert field is None or info["metadata"]["field"] == field
        except (AssertionError, KeyError) as exc:
            wrong[case] = (response.status_code, response.text[:200], exc)
    assert wrong == {}


def test_bad_input_over_rest_routes(server):
    url = server.http_url + "/v1/"
    for response, code in [
        (requests.get(url + "operations/nope", timeout=5), INVALID),
        (requests.get(url + UNKNOWN, timeout=5), NOT_FOUND),
        (requests.delete(url + "operations/nope", timeout=5), INVALID),
        (requests.delete(url + UNKNOWN, timeout=5), NOT_FOUND),
        (requests.post(url + "operations/nope:cancel", timeout=5), INVALID),
        (requests.post(url + UNKNOWN + ":cancel", timeout=5), NOT_FOUND),
        (requests.post(url + "operations/nope:wait", timeout=5), INVALID),
        (requests.post(url + UNKNOWN + ":wait", json={"timeout": "-1s"}, timeout=5), INVALID),
        (requests.get(url + "operations", params={"pageSize": "-1"}, timeout=5), INVALID),
        (requests.get(url + "operations", params={"pageSize": "ten"}, timeout=5), INVALID),
        (requests.get(url + "operations", params={"pageToken": "x"}, timeout=5), INVALID),
        (requests.get(url + "operations", params={"filter": "done ="}, timeout=5), INVALID),
    ]:
        _check_http(response, code)


def test_filter_errors_say_where(channel, server):
    for text, where in [("done = ", "position 7"), ("done AND foo = 1", "position 9")]:
        error = _grpc_error(channel, LIST, ListRequest(filter=text))
        assert where in error.details(), error.details()
        status = grpc_status(error)
        assert error_info(status).metadata["position"] == where.split()[-1]
    response = requests.get(
        server.http_url + "/v1/operations", params={"filter": "done AND foo = 1"}, timeout=5
    )
    assert "foo" in response.json()["error"]["message"]
    assert "position 9" in response.json()["error"]["message"]


def test_page_token_tampered_or_reused_with_another_filter(sim, jobs, channel, create_job):
    job_id = create_job()
    for _ in range(3):
        start_held(jobs, sim, job_id)
    first = ListRequest(filter="done = false", page_size=1)
    stub_call = channel.unary_unary(
        LIST,
        request_serializer=operations_pb2.ListOperationsRequest.SerializeToString,
        response_deserializer=operations_pb2.ListOperationsResponse.FromString,
    )
    token = stub_call(first).next_page_token
    assert token
    # The token works with its own filter (written differently: same canonical filter).
    again = ListRequest(filter="done=false", page_size=1, page_token=token)
    assert len(stub_call(again).operations) == 1

    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for request in [
        ListRequest(filter="done = false", page_token=flipped),
        ListRequest(filter="done = false", page_token=token[:-1]),
        ListRequest(filter="done = true", page_token=token),
        ListRequest(filter="", page_token=token),
    ]:
        error = _grpc_error(channel, LIST, request)
        assert error.code() == INVALID
        assert error_info(grpc_status(error)).metadata["field"] == "page_token"


def test_run_now_of_unknown_job_is_an_rpc_error_and_leaves_nothing(sim, channel, server):
    request = jobs_pb2.RunNowRequest(job_id=424242, request_id="first-try")
    error = _grpc_error(channel, RUN_NOW, request)
    # Databricks answers 400 INVALID_PARAMETER_VALUE "Job 424242 does not exist.": a missing
    # job is NOT_FOUND, with Databricks' own message.
    assert error.code() == NOT_FOUND
    assert error.details() == "Job 424242 does not exist."
    info = error_info(grpc_status(error))
    assert info.metadata["databricks_error_code"] == "INVALID_PARAMETER_VALUE"

    response = _gateway(server, RUN_NOW, '{"job_id": 424242}')
    assert response.json()["error"]["message"] == "Job 424242 does not exist."
    _check_http(response, NOT_FOUND)

    listed = requests.get(server.http_url + "/v1/operations", timeout=5).json()
    assert listed.get("operations", []) == []
    assert sim.created("runs") == []
    # The refused request id is free again: nothing was stored under it.
    again = _grpc_error(channel, RUN_NOW, request)
    assert again.code() == NOT_FOUND


def test_http_body_errors(server, sim, jobs, create_job):
    op = start_held(jobs, sim, create_job())
    get = f"/{OPS}/GetOperation"
    for body, content_type in [
        ("{", "application/json"),
        ('{"name": 5}', "application/json"),
        ("[1, 2]", "application/json"),
        (b"\xff\xfe", "application/json"),
        ('{"name": "x"}', "application/xml"),
    ]:
        response = _gateway(server, get, body, **{"Content-Type": content_type})
        info = _check_http(response, INVALID)
        assert info["reason"] in ("MALFORMED_JSON", "UNSUPPORTED_CONTENT_TYPE"), info

    too_big = '{"name": "' + "x" * (5 * 1024 * 1024) + '"}'
    response = _gateway(server, get, too_big)
    assert _check_http(response, INVALID)["reason"] == "REQUEST_TOO_LARGE"

    response = _gateway(server, "/google.longrunning.Operations/Nope", "{}")
    assert _check_http(response, NOT_FOUND)["reason"] == "UNKNOWN_METHOD"
    response = _gateway(server, "/no.such.Service/GetOperation", "{}")
    assert _check_http(response, NOT_FOUND)["reason"] == "UNKNOWN_METHOD"

    # A field the request does not have is refused, named.
    body = f'{{"name": "{op.name}", "unknownField": 1, "nested": {{"a": [1]}}}}'
    response = _gateway(server, get, body)
    info = _check_http(response, INVALID)
    assert info["reason"] == "UNKNOWN_FIELD"
    assert info["metadata"]["field"] in ("unknownField", "nested")
    wait_run_id_over_http(server, op.name)


def wait_run_id_over_http(server: Any, name: str) -> None:
    """The operation is reachable on the REST route too."""
    response = requests.get(f"{server.http_url}/v1/{name}", timeout=5)
    assert response.status_code == 200 and response.json()["name"] == name


def test_corrupt_grpc_request_is_invalid_argument(channel):
    call = channel.unary_unary(f"/{OPS}/GetOperation", request_serializer=lambda raw: raw)
    try:
        call(b"\xff\xff\xff", timeout=5)
    except grpc.RpcError as error:
        assert error.code() == INVALID
        assert error_info(grpc_status(error)).reason == "MALFORMED_REQUEST"
    else:
        raise AssertionError("a corrupt request was accepted")


def test_unknown_fields_of_a_start_method_are_named(server, sim):
    response = _gateway(server, RUN_NOW, '{"jobid": 1}')
    info = _check_http(response, INVALID)
    message = response.json()["error"]["message"]
    assert message.startswith('unknown field "jobid" in RunNowRequest; did you mean "job_id"?')
    assert info["reason"] == "UNKNOWN_FIELD"
    assert info["metadata"]["field"] == "jobid"
    nested = '{"steps": [{"run_now": {"job_id": 1, "params": {}}}]}'
    response = _gateway(server, "/lro.databricks.v1.Chains/RunChain", nested)
    info = _check_http(response, INVALID)
    assert info["metadata"]["field"] == "params"
    assert "RunChainRequest.steps[0].run_now" in response.json()["error"]["message"]
    assert sim.created("runs") == []


def test_a_resume_body_keeps_being_ignored(server):
    # Deployed waiters resume with {"data": {}}: the one body whose unknown fields are
    # ignored (the call carries x-alis-operation-id). The operation does not exist here, so
    # the answer is about it, not about the body.
    response = _gateway(
        server,
        "/lro.databricks.v1.Chains/RunChain",
        '{"data": {}}',
        **{"x-alis-operation-id": "0b7e3c1a-5f0e-4d9b-9a51-6f0c2d1e8a47"},
    )
    info = _check_http(response, NOT_FOUND)
    assert info["reason"] != "UNKNOWN_FIELD"


def test_a_method_a_path_does_not_serve_is_405_with_allow(server):
    for method, path, allowed in [
        ("GET", f"/{JOBS}/RunNow", "POST"),
        ("PUT", "/v1/operations/" + UNKNOWN.split("/")[1], "DELETE, GET, HEAD"),
        ("GET", "/v1/" + UNKNOWN + ":cancel", "POST"),
    ]:
        response = requests.request(method, server.http_url + path, timeout=5)
        assert response.status_code == 405, (method, path, response.text)
        assert response.headers["Allow"] == allowed, (method, path)
        assert response.headers["Content-Type"].startswith("application/json")
        error = response.json()["error"]
        assert error["code"] == 405
        assert error["status"] == "UNIMPLEMENTED"
        assert error["message"] == f"{method} is not allowed on {path}; allowed: {allowed}"
