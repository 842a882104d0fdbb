"""Restarts: unfinished operations are picked up again, and no run is ever started twice."""

from __future__ import annotations

import grpc
import pytest
from google.api_core import operations_v1
from lro_steps import run_metadata, wait_done, wait_run_id

from lro_server._proto.lro.databricks.v1 import jobs_pb2, jobs_pb2_grpc
from lro_server.databricks.client import DatabricksOptions


class Client:
    """gRPC clients of one server."""

    def __init__(self, server) -> None:
        self.channel = grpc.insecure_channel(server.grpc_target)
        self.operations = operations_v1.OperationsClient(self.channel)
        self.jobs = jobs_pb2_grpc.JobsStub(self.channel)

    def close(self) -> None:
        self.channel.close()


@pytest.fixture
def clients():
    opened: list[Client] = []

    def connect(server) -> Client:
        opened.append(Client(server))
        return opened[-1]

    yield connect
    for client in opened:
        client.close()


@pytest.mark.parametrize("replica", ["same", "other"])
def test_restart_mid_run(sim, make_server, clients, create_job, replica):
    job_id = create_job()
    sim.set_timeline("runs", "hold", job_id=job_id)
    first = make_server(replica_id="replica-a")
    client = clients(first)
    op = client.jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id))
    run_id = wait_run_id(client.operations, op.name)
    first.stop()

    second = make_server(replica_id="replica-a" if replica == "same" else "replica-b")
    client = clients(second)
    assert not client.operations.get_operation(op.name).done
    sim.finish_run(run_id, "SUCCESS")
    done = wait_done(client.operations, op.name)
    run = jobs_pb2.Run()
    assert done.response.Unpack(run) and run.run_id == run_id
    assert len(sim.created("runs")) == 1
    assert sim.calls(path_contains="jobs/run-now") == 1


def test_cancel_after_restart_reaches_the_run(sim, make_server, clients, create_job):
    job_id = create_job()
    sim.set_timeline("runs", "hold", job_id=job_id)
    first = make_server(replica_id="replica-a")
    op = clients(first).jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id))
    wait_run_id(clients(first).operations, op.name)
    first.stop()
    client = clients(make_server(replica_id="replica-b"))
    client.operations.cancel_operation(op.name)
    assert wait_done(client.operations, op.name).error.code == 1
    assert sim.calls(path_contains="runs/cancel") == 1


@pytest.mark.parametrize("fault", ["unavailable", "drop_after_commit"])
def test_operation_stored_but_not_started_starts_once_after_restart(
    sim, make_server, clients, create_job, fault
):
    # The RPC answers with an operation whose start did not get through (Databricks down,
    # or the run was created but its answer lost); then the server goes away.
    job_id = create_job()
    sim.set_timeline("runs", "hold", job_id=job_id)
    short = DatabricksOptions(
        host=sim.url, token="test-token", call_timeout_seconds=0.5, requests_per_second=1000
    )
    fault_id = sim.inject_fault(fault, path=r"jobs/run-now$")
    first = make_server(replica_id="replica-a", databricks=short)
    op = clients(first).jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id))
    assert not op.done and run_metadata(op).run_id == 0
    first.stop()
    sim.remove_fault(fault_id)
    created_before = len(sim.created("runs"))
    assert created_before == (1 if fault == "drop_after_commit" else 0)

    client = clients(make_server(replica_id="replica-b"))
    run_id = wait_run_id(client.operations, op.name)
    runs = sim.created("runs")
    assert len(runs) == 1 and int(runs[0].entity_id) == run_id
    sim.finish_run(run_id, "SUCCESS")
    assert wait_done(client.operations, op.name).HasField("response")
    assert len(sim.created("runs")) == 1


def test_nothing_lost_across_restart(sim, make_server, clients, create_job):
    job_id = create_job()
    first = make_server()
    client = clients(first)
    done = wait_done(
        client.operations, client.jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id)).name
    )
    first.stop()
    again = clients(make_server()).operations
    assert again.get_operation(done.name) == done
    assert [op.name for op in again.list_operations("operations", "done")] == [done.name]
