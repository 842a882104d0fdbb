"""Tracking at scale and on demand: batched list polling, and the Hints.Refresh push hint."""

from __future__ import annotations

import grpc
import pytest
from family_helpers import future, metadata_when, outcome

from lro_server._proto.lro.databricks.v1 import hints_pb2, hints_pb2_grpc, jobs_pb2
from lro_server.testing.polling import wait_until


def _future(op, operations):
    return future(op, operations, jobs_pb2.Run, jobs_pb2.RunMetadata)


def test_many_runs_are_followed_with_list_calls(sim, jobs, operations, create_job, server):
    job_id = create_job("many")
    sim.set_timeline("runs", "hold", job_id=job_id)
    futures = [
        _future(jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id)), operations) for _ in range(8)
    ]
    run_ids = [
        metadata_when(f, lambda m: m.life_cycle_state == "RUNNING", "run").run_id for f in futures
    ]
    batcher = server.application.tracker.batcher
    wait_until(lambda: batcher.batches >= 3, what="a few batched polls")
    # A batch's list call is logged before the batch is counted: read the call log first
    # at the start and last at the end, so every batch counted in between is in the log.
    gets_before = sim.calls(path_contains="jobs/runs/get")
    lists_before = sim.calls(path_contains="jobs/runs/list")
    batches_before = batcher.batches
    wait_until(lambda: batcher.batches >= batches_before + 5, what="more batched polls")
    batches = batcher.batches - batches_before
    lists = sim.calls(path_contains="jobs/runs/list") - lists_before
    gets = sim.calls(path_contains="jobs/runs/get") - gets_before
    # Every batch lists; runs are read alone only by accident (e.g. a poll that lost a
    # write race and is retried).
    assert lists >= batches >= 5 and gets <= 2, (batches, lists, gets)
    for run_id in run_ids:
        sim.finish_run(run_id, "SUCCESS")
    assert all(f.result(timeout=30).result_state == "SUCCESS" for f in futures)


@pytest.fixture
def hints(channel):
    return hints_pb2_grpc.HintsStub(channel)


def test_refresh_of_an_unknown_operation_is_not_found(hints):
    with pytest.raises(grpc.RpcError) as caught:
        hints.Refresh(
            hints_pb2.RefreshRequest(name="operations/0f9c1c5e-3c1e-4b8e-9d6a-000000000000")
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_refresh_makes_the_tracker_look_now(sim, make_server, create_job):
    from google.api_core import operations_v1

    from lro_server._proto.lro.databricks.v1 import jobs_pb2_grpc

    # Polls every 30 s at best: only the hint can make the end seen within the test.
    server = make_server(poll_interval_seconds=30.0, max_poll_interval_seconds=60.0)
    job_id = create_job("hinted")
    sim.set_timeline("runs", "hold", job_id=job_id)
    with grpc.insecure_channel(server.grpc_target) as channel:
        jobs = jobs_pb2_grpc.JobsStub(channel)
        operations = operations_v1.OperationsClient(channel)
        fut = _future(jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id)), operations)
        run_id = metadata_when(fut, lambda m: m.run_id > 0, "the first poll").run_id
        sim.finish_run(run_id, "SUCCESS")

        def reads() -> int:  # runs/get, not the task outputs read at the end
            return sim.calls(path_contains="jobs/runs/get") - sim.calls(path_contains="get-output")

        gets = reads()
        hints_pb2_grpc.HintsStub(channel).Refresh(hints_pb2.RefreshRequest(name=fut.operation.name))
        op = outcome(fut, timeout=10)
        assert op.done and not op.HasField("error")
        assert reads() == gets + 1  # read again, not trusted
