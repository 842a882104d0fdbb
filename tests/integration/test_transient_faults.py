"""Throttling, outages and dropped connections delay operations but never fail them."""

from __future__ import annotations

import grpc
import pytest
from google.api_core import operations_v1
from lro_steps import run_metadata, start_held, wait_done, wait_run_id

from lro_server._proto.lro.databricks.v1 import jobs_pb2, jobs_pb2_grpc
from lro_server.cli.client import main
from lro_server.databricks.client import DatabricksOptions
from lro_server.testing.polling import wait_until

RUN_NOW = r"jobs/run-now$"
RUNS_GET = r"jobs/runs/get$"
RUNS_CANCEL = r"jobs/runs/cancel$"


def _assert_one_successful_run(sim, operations, name: str) -> None:
    done = wait_done(operations, name, timeout=30)
    assert done.HasField("response"), done.error
    runs = sim.created("runs")
    assert len(runs) == 1, runs
    assert run_metadata(done).run_id == int(runs[0].entity_id)


@pytest.mark.parametrize(
    "faults",
    [
        [("rate_limit", RUN_NOW, 2)],
        [("unavailable", RUN_NOW, 2)],
        [("drop_after_commit", RUN_NOW, 1)],
        [("drop_after_commit", RUN_NOW, 1), ("unavailable", RUN_NOW, 1)],
        [("rate_limit", RUNS_GET, 2), ("unavailable", RUNS_GET, 2)],
        [("drop_after_commit", RUNS_GET, 2)],
    ],
    ids=[
        "429-run-now",
        "503-run-now",
        "drop-run-now",
        "drop-then-503-run-now",
        "429-503-runs-get",
        "drop-runs-get",
    ],
)
def test_transient_errors_never_fail_an_operation(sim, jobs, operations, create_job, faults):
    job_id = create_job()
    for kind, path, times in faults:
        sim.inject_fault(kind, path=path, times=times)
    op = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id))
    _assert_one_successful_run(sim, operations, op.name)
    assert all(f.times == 0 for f in sim.faults()), sim.faults()


def test_random_faults_on_every_call(sim, jobs, operations, create_job):
    job_id = create_job()
    for kind in ("rate_limit", "unavailable", "drop_after_commit"):
        sim.inject_fault(kind, path=RUN_NOW, probability=0.3)
        sim.inject_fault(kind, path=RUNS_GET, probability=0.1)
    op = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id))
    _assert_one_successful_run(sim, operations, op.name)


def test_cancel_survives_transient_errors(sim, jobs, operations, create_job):
    op = start_held(jobs, sim, create_job())
    wait_run_id(operations, op.name)
    sim.inject_fault("unavailable", path=RUNS_CANCEL, times=1)
    sim.inject_fault("drop_after_commit", path=RUNS_CANCEL, times=1)
    operations.cancel_operation(op.name)
    done = wait_done(operations, op.name, timeout=30)
    assert done.error.code == 1
    assert len(sim.created("runs")) == 1


def test_slow_start_is_started_once(sim, jobs, operations, create_job):
    # The start outlives a lease renewal of the tracker: it must not start the run again.
    job_id = create_job()
    sim.inject_fault("slow", path=RUN_NOW, times=1, delay=1.5)
    op = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id))
    assert run_metadata(op).job_id == job_id
    _assert_one_successful_run(sim, operations, op.name)
    assert sim.calls(path_contains="jobs/run-now") == 1


def test_cancel_while_starting(sim, jobs, operations, create_job):
    job_id = create_job()
    sim.set_timeline("runs", "hold", job_id=job_id)
    sim.inject_fault("slow", path=RUN_NOW, times=1, delay=1.0)
    future = jobs.RunNow.future(jobs_pb2.RunNowRequest(job_id=job_id))
    listed = wait_until(
        lambda: list(operations.list_operations("operations", "")),
        timeout=5,
        what="the operation to be stored",
    )
    operations.cancel_operation(listed[0].name)
    op = future.result(timeout=10)
    assert op.name == listed[0].name
    done = wait_done(operations, op.name, timeout=10)
    assert done.error.code == 1
    assert len(sim.created("runs")) == 1
    assert sim.calls(path_contains="runs/cancel") == 1


def test_a_deferred_start_says_so_and_lro_list_shows_it(make_server, sim, create_job, capsys):
    # One attempt per call: Databricks down for the whole start defers it.
    server = make_server(
        databricks=DatabricksOptions(
            host=sim.url, token="test-token", call_timeout_seconds=0.3, requests_per_second=1000
        ),
        poll_interval_seconds=0.5,
        max_poll_interval_seconds=0.5,
    )
    job_id = create_job()
    sim.inject_fault("unavailable", path=RUN_NOW, probability=1.0)
    with grpc.insecure_channel(server.grpc_target) as channel:
        jobs = jobs_pb2_grpc.JobsStub(channel)
        operations = operations_v1.OperationsClient(channel)
        op = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id))

        metadata = run_metadata(op)
        assert metadata.life_cycle_state == "START_DEFERRED"
        assert "Databricks is unavailable" in metadata.state_message
        assert "retried with the same idempotency token" in metadata.state_message

        assert main(["list", "--server", server.grpc_target]) == 0
        listed = capsys.readouterr().out
        assert "START_DEFERRED" in listed and op.name.split("/")[1][:8] in listed

        sim.clear_faults()
        _assert_one_successful_run(sim, operations, op.name)
        assert run_metadata(operations.get_operation(op.name)).state_message == ""
