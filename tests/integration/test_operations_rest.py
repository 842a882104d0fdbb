"""google.longrunning.Operations through google-api-core's REST transport, on the HTTP front."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests
from google.api_core import exceptions, operation, operations_v1
from google.api_core.operations_v1.transports.rest import OperationsRestTransport
from google.auth.credentials import AnonymousCredentials
from google.longrunning import operations_pb2
from google.protobuf import json_format
from google.rpc import error_details_pb2
from lro_steps import run_metadata, start_held, wait_done, wait_run_id

from lro_server._proto.lro.databricks.v1 import jobs_pb2

#: The google.api.http rules of google/longrunning/operations.proto (the transport's own
#: defaults are for APIs that nest operations under a parent: /v1/{name=**/operations/*}).
HTTP_OPTIONS = {
    "google.longrunning.Operations.GetOperation": [
        {"method": "get", "uri": "/v1/{name=operations/**}"}
    ],
    "google.longrunning.Operations.ListOperations": [
        {"method": "get", "uri": "/v1/{name=operations}"}
    ],
    "google.longrunning.Operations.CancelOperation": [
        {"method": "post", "uri": "/v1/{name=operations/**}:cancel", "body": "*"}
    ],
    "google.longrunning.Operations.DeleteOperation": [
        {"method": "delete", "uri": "/v1/{name=operations/**}"}
    ],
}


@pytest.fixture
def rest(server) -> operations_v1.AbstractOperationsClient:
    """google-api-core's Operations client over REST, pointed at the HTTP front."""
    transport = OperationsRestTransport(
        host=server.http_url, credentials=AnonymousCredentials(), http_options=HTTP_OPTIONS
    )
    return operations_v1.AbstractOperationsClient(transport=transport)


def _future(op: operations_pb2.Operation, client: Any) -> operation.Operation:
    return operation.from_gapic(op, client, jobs_pb2.Run, metadata_type=jobs_pb2.RunMetadata)


def test_get_list_cancel_delete(sim, jobs, rest, create_job):
    job_id = create_job()
    held = [start_held(jobs, sim, job_id).name for _ in range(3)]
    run_id = wait_run_id(rest, held[0])
    got = rest.get_operation(held[0])
    assert got.name == held[0] and not got.done
    assert run_metadata(got).run_id == run_id

    pager = rest.list_operations("operations", "done = false", page_size=2)
    pages = [[op.name for op in page.operations] for page in pager.pages]
    assert pages == [held[:0:-1], held[:1]]

    rest.cancel_operation(held[0])
    cancelled = wait_done(rest, held[0])
    assert cancelled.error.code == 1
    assert [op.name for op in rest.list_operations("operations", "done")] == [held[0]]

    rest.delete_operation(held[1])
    with pytest.raises(exceptions.NotFound) as caught:
        rest.get_operation(held[1])
    assert caught.value.reason == "NOT_FOUND"
    assert {op.name for op in rest.list_operations("operations", "")} == {held[0], held[2]}


def test_errors_carry_error_info(rest):
    with pytest.raises(exceptions.NotFound) as caught:
        rest.get_operation(f"operations/{uuid.uuid4()}")
    assert caught.value.reason == "NOT_FOUND" and caught.value.domain == "lro.databricks.v1"
    with pytest.raises(exceptions.BadRequest) as caught:
        rest.get_operation("operations/nope")
    assert caught.value.reason == "MALFORMED_NAME"
    with pytest.raises(exceptions.BadRequest) as caught:
        list(rest.list_operations("operations", "done = "))
    assert caught.value.reason == "INVALID_FILTER"
    assert "position" in caught.value.message
    with pytest.raises(exceptions.BadRequest) as caught:
        list(rest.list_operations("operations", "", page_size=-1))
    assert caught.value.metadata == {"field": "page_size"}
    with pytest.raises(exceptions.NotFound):
        rest.cancel_operation(f"operations/{uuid.uuid4()}")
    with pytest.raises(exceptions.NotFound):
        rest.delete_operation(f"operations/{uuid.uuid4()}")


def test_future_success_returns_typed_response(sim, jobs, rest, create_job):
    job_id = create_job("ok")
    future = _future(jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id)), rest)
    run = future.result(timeout=20)
    assert isinstance(run, jobs_pb2.Run)
    assert run.job_id == job_id and run.result_state == "SUCCESS"
    assert future.metadata.run_id == run.run_id
    assert len(sim.created("runs")) == 1


def test_future_failure_raises_with_databricks_message(sim, jobs, rest, create_job):
    job_id = create_job("bad")
    future = _future(start_held(jobs, sim, job_id), rest)
    run_id = wait_run_id(rest, future.operation.name)
    sim.finish_run(run_id, "FAILED", state_message="NameError: name 'spark' is not defined")
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        future.result(timeout=20)
    assert "NameError: name 'spark' is not defined" in caught.value.message
    info = error_details_pb2.ErrorInfo()
    assert future.operation.error.details[0].Unpack(info)
    assert info.reason == "DATABRICKS_RUN_FAILED" and info.metadata["run_id"] == str(run_id)
    assert not future.cancelled()


def test_future_cancel(sim, jobs, rest, create_job):
    future = _future(start_held(jobs, sim, create_job()), rest)
    wait_run_id(rest, future.operation.name)
    assert future.cancel()
    with pytest.raises(exceptions.Cancelled):
        future.result(timeout=20)
    assert future.cancelled()
    assert sim.calls(path_contains="runs/cancel") == 1


def test_from_http_json(sim, jobs, server, create_job):
    """The plain-JSON future: api_request(method, path) against the REST routes."""

    def api_request(method: str, path: str) -> dict[str, Any]:
        # api-core builds "operations/{name}" and our names already start with it.
        url = f"{server.http_url}/v1/{path.removeprefix('operations/')}"
        response = requests.request(method, url, timeout=10)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    job_id = create_job()
    op = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id))
    as_json = json_format.MessageToDict(op)
    future = operation.from_http_json(
        as_json, api_request, jobs_pb2.Run, metadata_type=jobs_pb2.RunMetadata
    )
    run = future.result(timeout=20)
    assert run.job_id == job_id and run.result_state == "SUCCESS"

    held = operation.from_http_json(
        json_format.MessageToDict(start_held(jobs, sim, create_job())),
        api_request,
        jobs_pb2.Run,
        metadata_type=jobs_pb2.RunMetadata,
    )
    assert held.cancel()
    with pytest.raises(exceptions.GoogleAPICallError):
        held.result(timeout=20)
    assert held.cancelled()
