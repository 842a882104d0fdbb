"""Two servers on one store: shared tracking, takeover of a stopped replica's work, and no
update lost when a cancel races the run's completion. Runs on SQLite and on Spanner."""

from __future__ import annotations

import concurrent.futures
import contextlib
from pathlib import Path

import grpc
import pytest
from google.api_core import exceptions, operation, operations_v1

from lro_server._proto.lro.databricks.v1 import jobs_pb2, jobs_pb2_grpc
from lro_server.testing.polling import wait_until


@pytest.fixture(params=["sqlite", pytest.param("spanner", marks=pytest.mark.spanner)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One store shared by every server of the test: a SQLite file or an emulator database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/lro.db"
    return str(request.getfixturevalue("spanner_database_url"))


def _future(op, operations):  # type: ignore[no-untyped-def]
    return operation.from_gapic(op, operations, jobs_pb2.Run, metadata_type=jobs_pb2.RunMetadata)


def _run_id(operations, name: str) -> int:  # type: ignore[no-untyped-def]
    future = _future(operations.get_operation(name), operations)
    return int(future.metadata.run_id) if future.metadata else 0


def test_a_stopped_replicas_operations_are_taken_over(sim, make_server, create_job):
    job_id = create_job("held")
    sim.set_timeline("runs", "hold", job_id=job_id)
    first = make_server(replica_id="replica-a")
    second = make_server(replica_id="replica-b")
    with grpc.insecure_channel(first.grpc_target) as channel:
        jobs = jobs_pb2_grpc.JobsStub(channel)
        names = [jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id)).name for _ in range(3)]
        ops = operations_v1.OperationsClient(channel)
        run_ids = [wait_until(lambda n=n: _run_id(ops, n), timeout=20, what="run") for n in names]
    first.stop()
    for run_id in run_ids:
        sim.finish_run(run_id, "SUCCESS")

    with grpc.insecure_channel(second.grpc_target) as channel:
        ops = operations_v1.OperationsClient(channel)
        results = [_future(ops.get_operation(n), ops).result(timeout=30) for n in names]

    assert sorted(r.run_id for r in results) == sorted(run_ids)
    assert all(r.result_state == "SUCCESS" for r in results)
    assert len(sim.created("runs")) == 3  # nobody launched a run twice


def test_a_cancel_racing_completion_loses_no_update(sim, make_server, create_job):
    job_id = create_job("racy")
    sim.set_timeline("runs", "hold", job_id=job_id)
    servers = [make_server(replica_id="replica-a"), make_server(replica_id="replica-b")]
    channels = [grpc.insecure_channel(s.grpc_target) for s in servers]
    try:
        jobs = jobs_pb2_grpc.JobsStub(channels[0])
        clients = [operations_v1.OperationsClient(c) for c in channels]
        name = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id)).name
        run_id = wait_until(lambda: _run_id(clients[0], name), timeout=20, what="run")

        # Finish the run and cancel the operation (through the other replica) together.
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            finished = pool.submit(sim.finish_run, run_id, "SUCCESS")
            cancelled = pool.submit(clients[1].cancel_operation, name)
            finished.result(timeout=30)
            # FAILED_PRECONDITION: the run won, the operation was already done.
            with contextlib.suppress(exceptions.FailedPrecondition):
                cancelled.result(timeout=30)

        done = [
            wait_until(
                lambda c=c: (op := c.get_operation(name)).done and op, timeout=30, what="done"
            )
            for c in clients
        ]
        again = clients[0].get_operation(name)
    finally:
        for channel in channels:
            channel.close()

    # Exactly one outcome, the same seen from both replicas, and it never changes again.
    assert done[0] == done[1] == again
    final = done[0]
    assert final.HasField("response") != final.HasField("error")
    if final.HasField("error"):
        assert final.error.code == 1  # CANCELLED
