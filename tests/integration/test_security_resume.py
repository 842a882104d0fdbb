"""Resume only from the waiter: with auth on, a resume call (``x-alis-operation-id``) from
anyone but the workflow identity is PERMISSION_DENIED and changes nothing; the in-process
waiter still resumes; with auth off, any caller may resume (nothing can be verified)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
import requests
from chain_helpers import METHOD_PATH, chain_request, resume_http, run_now
from google.longrunning import operations_pb2, operations_pb2_grpc
from lro_steps import run_metadata
from reliability import create_job
from secured import ADMIN, ALICE, BOB, WAITER, Secured, channel_to, secured_server

from lro_server._proto.lro.databricks.v1 import chains_pb2, chains_pb2_grpc
from lro_server.testing.polling import wait_until

pytestmark = pytest.mark.xdist_group("security_resume")


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    """One authenticated server for the module."""
    with secured_server(tmp_path_factory.mktemp("resume")) as running:
        yield running


def _waiting_chain(secured: Secured, channel: grpc.Channel) -> tuple[str, str]:
    """Alice's two-step chain, waiting on its first (held) run; (parent, child)."""
    held = create_job(secured.sim, "held-step")
    secured.sim.set_timeline("runs", "hold", job_id=held)
    chains = chains_pb2_grpc.ChainsStub(channel)
    ops = operations_pb2_grpc.OperationsStub(channel)
    op = chains.RunChain(
        chain_request(run_now("first", held), run_now("second", held)),
        metadata=secured.metadata(ALICE),
        timeout=10,
    )

    def child_running() -> str:
        meta = chains_pb2.ChainMetadata()
        parent = ops.GetOperation(
            operations_pb2.GetOperationRequest(name=op.name), metadata=secured.metadata(ALICE)
        )
        parent.metadata.Unpack(meta)
        child = meta.steps[0].operation if meta.steps else ""
        # Settled: the child is RUNNING and the parent mirrors it, so no later write of the
        # child's progress changes the parent during the test.
        if not child or meta.steps[0].life_cycle_state != "RUNNING":
            return ""
        got = ops.GetOperation(
            operations_pb2.GetOperationRequest(name=child), metadata=secured.metadata(ALICE)
        )
        return child if run_metadata(got).run_id else ""

    child = wait_until(child_running, timeout=20, what="the first step's run")
    return op.name, child


def _snapshot(secured: Secured, name: str) -> tuple[int, bytes | None, bytes]:
    record = secured.server.run(secured.server.application.store.get(name))
    return record.version, record.checkpoint, record.operation.SerializeToString()


def test_only_the_waiter_may_resume(secured, figures):
    with channel_to(secured) as channel:
        parent, child = _waiting_chain(secured, channel)
        before = _snapshot(secured, parent)
        chains = chains_pb2_grpc.ChainsStub(channel)
        op_id = parent.rsplit("/", 1)[1]
        refused = 0
        for who in (ALICE, BOB, ADMIN):
            for target in (op_id, str(uuid.uuid4()), "not an id"):
                with pytest.raises(grpc.RpcError) as caught:
                    chains.RunChain(
                        chains_pb2.RunChainRequest(),
                        metadata=(*secured.metadata(who), ("x-alis-operation-id", target)),
                        timeout=10,
                    )
                assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED, who
                assert "waiter" in caught.value.details()
                refused += 1
            response = requests.post(
                secured.server.http_url + METHOD_PATH,
                json={"data": {}},
                headers=secured.headers(who, **{"x-alis-operation-id": op_id}),
                timeout=10,
            )
            assert response.status_code == 403, response.text
            assert response.json()["error"]["status"] == "PERMISSION_DENIED"
            refused += 1
        response = requests.post(
            secured.server.http_url + METHOD_PATH,
            json={"data": {}},
            headers={"x-alis-operation-id": op_id},
            timeout=10,
        )
        assert response.status_code == 401
        assert _snapshot(secured, parent) == before, "a refused resume changed the operation"

        # The workflow identity may: children still run, so its resume is a no-op.
        resumed = chains.RunChain(
            chains_pb2.RunChainRequest(),
            metadata=(*secured.metadata(WAITER), ("x-alis-operation-id", op_id)),
            timeout=10,
        )
        assert resumed.name == parent and not resumed.done
        assert _snapshot(secured, parent) == before

        # The in-process waiter resumes once the child is done: the chain goes on.
        run_id = run_metadata(
            operations_pb2_grpc.OperationsStub(channel).GetOperation(
                operations_pb2.GetOperationRequest(name=child), metadata=secured.metadata(ALICE)
            )
        ).run_id
        secured.sim.finish_run(run_id, "SUCCESS")
        wait_until(
            lambda: _snapshot(secured, parent)[0] > before[0],
            timeout=20,
            what="the embedded waiter to resume the chain",
        )
    figures(resume_calls_refused=refused, operations_changed_by_refused_calls=0)


def test_with_auth_off_any_caller_resumes(sim, server, channel, create_job):
    held = create_job("held")
    sim.set_timeline("runs", "hold", job_id=held)
    op = chains_pb2_grpc.ChainsStub(channel).RunChain(chain_request(run_now("only", held)))
    response = resume_http(server.http_url, op.name)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == op.name
