"""/metrics scraped and parsed after real operations: the counters moved as expected."""

from __future__ import annotations

import requests
from google.api_core import operation
from prometheus_client.parser import text_string_to_metric_families

from lro_server._proto.lro.databricks.v1 import jobs_pb2
from lro_server.testing.polling import wait_until


def scrape(server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:  # type: ignore[no-untyped-def]
    """Every sample of the server's /metrics, by (name, sorted labels)."""
    response = requests.get(server.http_url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    """Sum over every sample of ``name`` whose labels include ``labels``."""
    return sum(
        v
        for (n, ls), v in samples.items()
        if n == name and all(dict(ls).get(k) == want for k, want in labels.items())
    )


def test_counters_move_with_operations(server, sim, jobs, operations, create_job):
    job_id = create_job("metrics")
    op = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id))
    operation.from_gapic(op, operations, jobs_pb2.Run, metadata_type=jobs_pb2.RunMetadata).result(
        timeout=30
    )
    name = op.name
    assert requests.get(f"{server.http_url}/v1/{name}", timeout=10).status_code == 200
    missing = "operations/00000000-0000-4000-8000-000000000000"
    assert requests.get(f"{server.http_url}/v1/{missing}", timeout=10).status_code == 404

    samples = scrape(server)
    rpc = "lro_rpc_requests_total"
    assert value(samples, rpc, front="grpc", method="lro.databricks.v1.Jobs/RunNow", code="OK") == 1
    get = "google.longrunning.Operations/GetOperation"
    assert value(samples, rpc, front="grpc", method=get, code="OK") >= 1
    assert value(samples, rpc, front="http", method=get, code="OK") == 1
    assert value(samples, rpc, front="http", method=get, code="NOT_FOUND") == 1
    assert total(samples, "lro_rpc_duration_seconds_count", front="http", method=get) == 2

    assert value(samples, "lro_operations_created_total", family="jobs") == 1
    assert value(samples, "lro_operations_finished_total", family="jobs", code="OK") == 1
    assert total(samples, "lro_operations_active") == 0

    assert total(samples, "lro_databricks_calls_total", endpoint="/api/2.2/jobs/run-now") == 1
    assert total(samples, "lro_databricks_calls_total", status="OK") >= 2
    assert value(samples, "lro_databricks_rate_limit_wait_seconds_count") >= 2
    assert value(samples, "lro_tracker_polls_total") >= 1
    assert value(samples, "lro_store_duration_seconds_count", method="create") == 1
    assert value(samples, "lro_store_duration_seconds_count", method="update") >= 2
    assert value(samples, "lro_wait_operation_waiters") == 0
    assert "lro_databricks_rate_limit_waits_total" in {n for n, _ in samples}


def test_active_gauge_follows_live_state(server, sim, jobs, operations, create_job):
    job_id = create_job("gauge")
    sim.set_timeline("runs", "hold", job_id=job_id)
    op = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id))

    def running() -> float:
        return value(scrape(server), "lro_operations_active", family="jobs", state="RUNNING")

    assert wait_until(running, timeout=20, what="a RUNNING operation in the gauge") == 1
    operations.cancel_operation(op.name)

    def finished() -> float:
        return value(
            scrape(server), "lro_operations_finished_total", family="jobs", code="CANCELLED"
        )

    assert wait_until(finished, timeout=20, what="the cancelled operation counted") == 1
    assert total(scrape(server), "lro_operations_active") == 0


def test_failed_databricks_calls_and_resume_hook_are_counted(server, jobs):
    import grpc
    import pytest

    with pytest.raises(grpc.RpcError):
        jobs.RunNow(jobs_pb2.RunNowRequest(job_id=999_999))  # no such job in the simulator
    server.application.metrics.observe_resume("example.v1.Resumable/Method", 1.5)
    samples = scrape(server)
    calls = "lro_databricks_calls_total"
    failed = total(samples, calls, endpoint="/api/2.2/jobs/run-now") - total(
        samples, calls, endpoint="/api/2.2/jobs/run-now", status="OK"
    )
    assert failed == 1
    method = "example.v1.Resumable/Method"
    assert value(samples, "lro_resume_latency_seconds_count", method=method) == 1
    assert value(samples, "lro_resumes_total", method=method, outcome="resumed") == 1


def test_each_server_has_its_own_registry(make_server, jobs, create_job):
    jobs.RunNow(jobs_pb2.RunNowRequest(job_id=create_job()))
    other = make_server()
    samples = scrape(other)
    assert total(samples, "lro_rpc_requests_total") == 0
    assert total(samples, "lro_operations_created_total") == 0


def test_chain_resumes_are_timed(server, channel, operations, create_job):
    from chain_helpers import chain_request, future, run_now

    from lro_server._proto.lro.databricks.v1 import chains_pb2_grpc

    chains = chains_pb2_grpc.ChainsStub(channel)
    job_id = create_job("steps")
    op = chains.RunChain(chain_request(run_now("one", job_id), run_now("two", job_id)))
    future(op, operations).result(timeout=30)
    samples = scrape(server)
    method = "lro.databricks.v1.Chains/RunChain"
    assert value(samples, "lro_resume_latency_seconds_count", method=method) >= 2
    assert value(samples, "lro_resumes_total", method=method, outcome="resumed") >= 2
    assert value(samples, "lro_operations_finished_total", family="chain", code="OK") == 1
