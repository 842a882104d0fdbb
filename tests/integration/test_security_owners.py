"""Per-owner operations: another owner's operation answers exactly like a missing one
(gRPC and HTTP), listings show the caller's own, admins see all, the waiter only reads."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
import requests
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2
from lro_steps import grpc_status, run_metadata
from reliability import create_job
from secured import ADMIN, ALICE, BOB, WAITER, Secured, channel_to, secured_server

from lro_server._proto.lro.databricks.v1 import jobs_pb2, jobs_pb2_grpc
from lro_server.testing.polling import wait_until

pytestmark = pytest.mark.xdist_group("security_owners")


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    """One authenticated server for the module."""
    with secured_server(tmp_path_factory.mktemp("owners")) as running:
        yield running


@pytest.fixture(scope="module")
def channel(secured: Secured) -> Iterator[grpc.Channel]:
    """A channel to the server."""
    with channel_to(secured) as chan:
        yield chan


def _start_held(secured: Secured, channel: grpc.Channel, owner: str) -> operations_pb2.Operation:
    job_id = create_job(secured.sim, f"held-{owner}")
    secured.sim.set_timeline("runs", "hold", job_id=job_id)
    jobs = jobs_pb2_grpc.JobsStub(channel)
    return jobs.RunNow(
        jobs_pb2.RunNowRequest(job_id=job_id), metadata=secured.metadata(owner), timeout=10
    )


def _grpc_answer(call, request, metadata) -> tuple[object, ...]:  # type: ignore[no-untyped-def]
    """Everything a caller learns from a failed call, with the operation id blanked."""
    name = request.name
    with pytest.raises(grpc.RpcError) as caught:
        call(request, metadata=metadata, timeout=10)
    status = grpc_status(caught.value)
    return (
        caught.value.code(),
        status.message.replace(name, "<name>"),
        status.SerializeToString().replace(name.encode(), b"<name>"),
    )


def _http_answer(response: requests.Response, name: str) -> tuple[object, ...]:
    return response.status_code, response.text.replace(name, "<name>")


def test_another_owners_operation_is_indistinguishable_from_a_missing_one(
    secured, channel, figures
):
    op = _start_held(secured, channel, ALICE)
    ops = operations_pb2_grpc.OperationsStub(channel)
    missing = f"operations/{uuid.uuid4()}"
    compared = 0
    for method, cls in {
        "GetOperation": operations_pb2.GetOperationRequest,
        "WaitOperation": operations_pb2.WaitOperationRequest,
        "CancelOperation": operations_pb2.CancelOperationRequest,
        "DeleteOperation": operations_pb2.DeleteOperationRequest,
    }.items():
        call = getattr(ops, method)
        theirs = _grpc_answer(call, cls(name=op.name), secured.metadata(BOB))
        absent = _grpc_answer(call, cls(name=missing), secured.metadata(BOB))
        assert theirs == absent, method
        assert theirs[0] == grpc.StatusCode.NOT_FOUND
        compared += 1
    base = secured.server.http_url
    for method, path, body in [
        ("GET", "/v1/{name}", None),
        ("POST", "/v1/{name}:wait", {"timeout": "0.1s"}),
        ("POST", "/v1/{name}:cancel", None),
        ("DELETE", "/v1/{name}", None),
        ("POST", "/google.longrunning.Operations/GetOperation", {"name": "{name}"}),
        ("POST", "/google.longrunning.Operations/CancelOperation", {"name": "{name}"}),
    ]:
        answers = []
        for name in (op.name, missing):
            url = base + path.format(name=name)
            payload = None if body is None else {k: v.format(name=name) for k, v in body.items()}
            response = requests.request(
                method, url, json=payload, headers=secured.headers(BOB), timeout=10
            )
            answers.append(_http_answer(response, name))
        assert answers[0] == answers[1], path
        assert answers[0][0] == 404
        compared += 1
    # Nothing happened to Alice's operation.
    record = secured.server.run(secured.server.application.store.get(op.name))
    assert not record.cancel_requested
    run_id = wait_until(
        lambda: (
            run_metadata(
                ops.GetOperation(
                    operations_pb2.GetOperationRequest(name=op.name),
                    metadata=secured.metadata(ALICE),
                )
            ).run_id
        ),
        what="the run to start",
    )
    assert run_id and secured.sim.calls(path_contains="runs/cancel") == 0
    figures(answers_compared=compared, existence_leaks=0)


def test_listings_are_per_owner_and_admins_see_all(secured, channel, figures):
    mine = {_start_held(secured, channel, ALICE).name for _ in range(3)}
    theirs = {_start_held(secured, channel, BOB).name for _ in range(2)}
    ops = operations_pb2_grpc.OperationsStub(channel)

    def listed(who: str, page_size: int = 2) -> set[str]:
        names: set[str] = set()
        token = ""
        while True:
            page = ops.ListOperations(
                operations_pb2.ListOperationsRequest(
                    name="operations", page_size=page_size, page_token=token
                ),
                metadata=secured.metadata(who),
                timeout=10,
            )
            names |= {o.name for o in page.operations}
            token = page.next_page_token
            if not token:
                return names

    alice, bob, admin = listed(ALICE), listed(BOB), listed(ADMIN)
    assert mine <= alice and not (alice & theirs)
    assert theirs <= bob and not (bob & mine)
    assert mine | theirs <= admin
    assert listed(WAITER) == set()
    # A page token is bound to its owner: Bob cannot page through Alice's listing.
    first = ops.ListOperations(
        operations_pb2.ListOperationsRequest(name="operations", page_size=1),
        metadata=secured.metadata(ALICE),
    )
    with pytest.raises(grpc.RpcError) as caught:
        ops.ListOperations(
            operations_pb2.ListOperationsRequest(
                name="operations", page_size=1, page_token=first.next_page_token
            ),
            metadata=secured.metadata(BOB),
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Same over HTTP.
    response = requests.get(
        secured.server.http_url + "/v1/operations?pageSize=1000",
        headers=secured.headers(BOB),
        timeout=10,
    )
    names = {o["name"] for o in response.json().get("operations", [])}
    assert theirs <= names and not (names & mine)
    figures(owners=2, operations=len(mine) + len(theirs), leaked_in_listings=0)


def test_the_waiter_reads_everything_but_changes_nothing(secured, channel):
    op = _start_held(secured, channel, ALICE)
    ops = operations_pb2_grpc.OperationsStub(channel)
    seen = ops.GetOperation(
        operations_pb2.GetOperationRequest(name=op.name), metadata=secured.metadata(WAITER)
    )
    assert seen.name == op.name
    waited = ops.WaitOperation(
        operations_pb2.WaitOperationRequest(
            name=op.name, timeout=duration_pb2.Duration(nanos=50_000_000)
        ),
        metadata=secured.metadata(WAITER),
    )
    assert waited.name == op.name and not waited.done
    for call, cls in (
        (ops.CancelOperation, operations_pb2.CancelOperationRequest),
        (ops.DeleteOperation, operations_pb2.DeleteOperationRequest),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            call(cls(name=op.name), metadata=secured.metadata(WAITER))
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert grpc_status(caught.value).message.startswith("the caller may read")
    record = secured.server.run(secured.server.application.store.get(op.name))
    assert not record.done and not record.cancel_requested


def test_an_admin_manages_every_owners_operation(secured, channel):
    op = _start_held(secured, channel, ALICE)
    ops = operations_pb2_grpc.OperationsStub(channel)
    ops.CancelOperation(
        operations_pb2.CancelOperationRequest(name=op.name), metadata=secured.metadata(ADMIN)
    )

    def cancelled() -> operations_pb2.Operation | None:
        current = ops.GetOperation(
            operations_pb2.GetOperationRequest(name=op.name), metadata=secured.metadata(ALICE)
        )
        return current if current.done else None

    done = wait_until(cancelled, timeout=20, what="the cancel to finish")
    assert done.error.code == grpc.StatusCode.CANCELLED.value[0]
    ops.DeleteOperation(
        operations_pb2.DeleteOperationRequest(name=op.name), metadata=secured.metadata(ADMIN)
    )
    with pytest.raises(grpc.RpcError) as caught:
        ops.GetOperation(
            operations_pb2.GetOperationRequest(name=op.name), metadata=secured.metadata(ALICE)
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
