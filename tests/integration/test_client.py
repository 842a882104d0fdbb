"""lro_server.client, sync and async, against a live server and the simulator: success, failure
with Databricks' message, cancel, the operations calls, and waiting without polling."""

from __future__ import annotations

import concurrent.futures
import datetime
import threading

import pytest
from google.api_core import exceptions

from lro_server import v1
from lro_server.client import AsyncClient, AsyncOperation, Client, Operation
from lro_server.testing.polling import wait_until

GET = "/google.longrunning.Operations/GetOperation"
WAIT = "/google.longrunning.Operations/WaitOperation"


def _count(server, method: str) -> float:  # type: ignore[no-untyped-def]
    """RPCs of ``method`` the server answered (its own metrics, both fronts)."""
    registry = server.application.metrics.registry
    return sum(
        sample.value
        for metric in registry.collect()
        if metric.name == "lro_rpc_requests"
        for sample in metric.samples
        if sample.name == "lro_rpc_requests_total" and sample.labels["method"] == method
    )


@pytest.fixture
def client(server):  # type: ignore[no-untyped-def]
    with Client(server.grpc_target) as connected:
        yield connected


def _run_id(client: Client, op: Operation) -> int:
    def started() -> int:
        meta = v1.RunMetadata()
        client.operations.get(op.name).metadata.Unpack(meta)
        return meta.run_id

    return int(wait_until(started, timeout=20, what="the run to start"))


def test_run_now_succeeds_with_a_typed_run(client, sim, create_job):
    op = client.jobs.run_now(
        job_id=create_job("ok", tasks=2),
        notebook_params={"day": "2026-12-01"},
        request_id="client-ok",
        timeout=datetime.timedelta(minutes=5),
    )
    assert isinstance(op, Operation) and op.name.startswith("operations/")
    run = op.result(timeout=60)
    assert isinstance(run, v1.Run)
    assert run.result_state == "SUCCESS" and len(run.tasks) == 2
    assert op.done() and not op.cancelled()
    assert isinstance(op.metadata, v1.RunMetadata) and op.metadata.progress_percent == 100
    # AIP-155: the same request with the same id is the same operation ...
    again = client.jobs.run_now(
        job_id=run.job_id, notebook_params={"day": "2026-12-01"}, request_id="client-ok"
    )
    assert again.name == op.name and len(sim.created("runs")) == 1
    # ... and the id reused for another request is refused.
    with pytest.raises(exceptions.InvalidArgument, match="different request"):
        client.jobs.run_now(job_id=run.job_id, request_id="client-ok")


def test_a_failed_run_raises_with_databricks_message(client, sim, create_job):
    job_id = create_job("failing")
    sim.set_timeline("runs", "hold", job_id=job_id)
    op = client.jobs.run_now(job_id=job_id)
    run_id = _run_id(client, op)
    sim.finish_run(run_id, "FAILED", task_message="NameError: name 'spark_df' is not defined")
    with pytest.raises(exceptions.Unknown) as caught:
        op.result(timeout=60)
    assert caught.value.message == "task t0 failed: NameError: name 'spark_df' is not defined"


def test_a_refused_start_is_a_google_api_core_exception(client):
    with pytest.raises(exceptions.NotFound) as caught:
        client.jobs.run_now(job_id=987654)
    assert caught.value.message == "Job 987654 does not exist."
    with pytest.raises(TypeError, match="unexpected field 'jobid'"):
        client.jobs.run_now(jobid=1)


def test_cancel(client, sim, create_job):
    job_id = create_job("cancelled")
    sim.set_timeline("runs", "hold", job_id=job_id)
    op = client.jobs.run_now(job_id=job_id)
    _run_id(client, op)
    assert op.cancel() is True
    with pytest.raises(exceptions.Cancelled):
        op.result(timeout=60)
    assert op.cancelled()


def test_waiting_uses_wait_operation_not_polling(client, server, sim, create_job):
    job_id = create_job("held")
    sim.set_timeline("runs", "hold", job_id=job_id)
    op = client.jobs.run_now(job_id=job_id)
    run_id = _run_id(client, op)
    gets, waits = _count(server, GET), _count(server, WAIT)
    result: list[object] = []
    waiter = threading.Thread(target=lambda: result.append(op.result(timeout=120)))
    waiter.start()
    notifier = server.application.notifier
    wait_until(lambda: notifier.waiters > 0, what="the held WaitOperation call")
    sim.finish_run(run_id, "SUCCESS")  # a moment later, the held call answers
    waiter.join(timeout=60)
    assert result and isinstance(result[0], v1.Run)
    assert _count(server, GET) == gets  # not one GetOperation while waiting
    assert _count(server, WAIT) - waits <= 2


def test_a_timeout_is_a_timeout_error(client, sim, create_job):
    job_id = create_job("slow")
    sim.set_timeline("runs", "hold", job_id=job_id)
    op = client.jobs.run_now(job_id=job_id)
    with pytest.raises(concurrent.futures.TimeoutError):
        op.result(timeout=0.5)
    assert not op.done()


def test_operations_calls_and_following_an_existing_operation(client, sim, create_job):
    op = client.jobs.run_now(job_id=create_job("listed"))
    later = client.operation(op.name)
    assert isinstance(later.result(timeout=60), v1.Run)
    assert client.operations.wait(op.name, timeout=5).done
    assert op.name in {o.name for o in client.operations.list("done = true")}
    assert client.operations.get(op.name).done
    client.operations.delete(op.name)
    with pytest.raises(exceptions.NotFound):
        client.operations.get(op.name)


def test_a_chain(client, create_job):
    first, second = create_job("first"), create_job("second")
    op = client.chains.run(
        steps=[
            {"name": "prepare", "run_now": {"job_id": first}},
            {"name": "train", "run_now": {"job_id": second}},
        ]
    )
    result = op.result(timeout=120)
    assert isinstance(result, v1.ChainResult)
    assert [step.name for step in result.steps] == ["prepare", "train"]
    assert isinstance(op.metadata, v1.ChainMetadata)
    assert [s.state for s in op.metadata.steps] == [v1.StepState.SUCCEEDED] * 2


async def test_async_client_success_failure_cancel(server, sim, create_job):
    async with AsyncClient(server.grpc_target) as client:
        op = await client.jobs.run_now(job_id=create_job("async-ok"))
        assert isinstance(op, AsyncOperation)
        run = await op.result(timeout=60)
        assert isinstance(run, v1.Run) and run.result_state == "SUCCESS"

        failing = create_job("async-failing")
        sim.set_timeline("runs", "failed", job_id=failing)
        op = await client.jobs.run_now(job_id=failing)
        with pytest.raises(exceptions.GoogleAPICallError) as caught:
            await op.result(timeout=60)
        assert "AssertionError: the input table is empty" in caught.value.message

        held = create_job("async-held")
        sim.set_timeline("runs", "hold", job_id=held)
        op = await client.jobs.run_now(job_id=held)
        gets = _count(server, GET)
        with pytest.raises(TimeoutError):
            await op.result(timeout=0.5)
        assert _count(server, GET) == gets  # waited with WaitOperation only
        assert await op.cancel() is True
        with pytest.raises(exceptions.Cancelled):
            await op.result(timeout=60)

        with pytest.raises(exceptions.NotFound):
            await client.jobs.run_now(job_id=987654)
        names = [o.name async for o in client.operations.list()]
        assert op.name in names
        assert (await client.operations.wait(op.name, timeout=1)).done
