"""The Cloud Workflows waiter against a loopback stand-in of the Executions API."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest
from chain_helpers import chain_request, get, metadata, run_now
from executions_standin import ExecutionsStandIn
from google.api_core import operations_v1

from lro_server._proto.lro.databricks.v1 import chains_pb2_grpc
from lro_server.cli.resume_assembly import ResumeConfig
from lro_server.resume.checkpoint import Checkpoint
from lro_server.testing.polling import wait_until
from lro_server.testing.server_thread import ServerThread

WORKFLOW = "projects/acme/locations/europe-west1/workflows/operation-waiter"


@pytest.fixture
def standin() -> Iterator[ExecutionsStandIn]:
    with ExecutionsStandIn() as fake:
        yield fake


@pytest.fixture
def clients(
    make_server: Callable[..., ServerThread], standin: ExecutionsStandIn
) -> Iterator[tuple[chains_pb2_grpc.ChainsStub, operations_v1.OperationsClient, ServerThread]]:
    config = ResumeConfig(
        waiter="workflows",
        workflow=WORKFLOW,
        workflows_endpoint=standin.target,
        poll_initial_seconds=3,
        poll_max_seconds=45,
    )
    server = make_server(resume=config)
    with grpc.insecure_channel(server.grpc_target) as channel:
        yield (
            chains_pb2_grpc.ChainsStub(channel),
            operations_v1.OperationsClient(channel),
            server,
        )


def test_execution_carries_the_wait_contract(sim, standin, clients, create_job):
    chains, ops, server = clients
    job_id = create_job("job")
    sim.set_timeline("runs", "hold", job_id=job_id)
    op = chains.RunChain(chain_request(run_now("only", job_id), timeout=600))
    argument = standin.next_argument()
    child = metadata(get(ops, op.name)).steps[0].operation
    assert standin.requests[0].parent == WORKFLOW
    assert set(argument) == {
        "operationId",
        "operation",
        "children",
        "resumeMethod",
        "waitId",
        "timeoutSeconds",
        "poll",
    }
    assert argument["operation"] == op.name
    assert argument["operationId"] == op.name.removeprefix("operations/")
    assert argument["children"] == [child]
    assert argument["resumeMethod"] == "lro.databricks.v1.Chains/RunChain"
    assert argument["waitId"] == "1"
    assert 590 < argument["timeoutSeconds"] <= 600
    assert argument["poll"] == {"initialDelaySeconds": 3, "maxDelaySeconds": 45, "multiplier": 2}
    # The execution's name is kept in the checkpoint, so a restart does not launch again.
    handle = wait_until(lambda: _handle(server, op.name), timeout=10, what="the handle")
    assert handle.startswith(WORKFLOW + "/executions/")


def test_failed_launch_is_handed_off_again(sim, standin, clients, create_job):
    chains, ops, _server = clients
    job_id = create_job("job")
    sim.set_timeline("runs", "hold", job_id=job_id)
    standin.fail_next = 1
    op = chains.RunChain(chain_request(run_now("only", job_id)))
    assert not op.done  # the start itself succeeded
    argument = standin.next_argument(timeout=20)
    assert argument["waitId"] == "2"  # a fresh wait after the failed hand-off
    assert not get(ops, op.name).done


def _handle(server: ServerThread, name: str) -> str:
    record = server.run(server.application.store.get(name))
    wait = Checkpoint.decode(record.checkpoint).wait
    return wait.handle if wait else ""
