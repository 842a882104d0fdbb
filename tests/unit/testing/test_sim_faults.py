"""Fault injection and call recording, seen through the real databricks-sdk."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import TooManyRequests

from lro_server.testing.databricks_sim import SimulatorThread

AUTH = {"Authorization": "Bearer t"}


def _job(w: WorkspaceClient) -> int:
    job_id = w.jobs.create(name="j").job_id
    assert job_id is not None
    return job_id


def test_sdk_retries_through_429_honouring_retry_after(
    w: WorkspaceClient, sim: SimulatorThread, sdk_clock: object
) -> None:
    job_id = _job(w)
    sim.inject_fault("rate_limit", path="jobs/get$", times=2, retry_after=3)
    raw = requests.get(f"{sim.url}/api/2.2/jobs/get?job_id={job_id}", headers=AUTH, timeout=5)
    assert raw.status_code == 429 and raw.headers["Retry-After"] == "3"
    assert raw.json() == {
        "error_code": "REQUEST_LIMIT_EXCEEDED",
        "message": "Too many requests. Please retry later.",
    }
    assert w.jobs.get(job_id).job_id == job_id
    assert [c.status for c in sim.call_log("jobs/get")] == [429, 429, 200]
    assert sim.calls("jobs/get", status=429) == 2
    # The SDK slept Retry-After (+ up to 1 s of jitter) before its retry.
    assert 3 <= sdk_clock.slept[-1] < 4  # type: ignore[attr-defined]


def test_sdk_retries_through_503(w: WorkspaceClient, sim: SimulatorThread) -> None:
    job_id = _job(w)
    sim.inject_fault("unavailable", method="POST", path="run-now", times=3, retry_after=0)
    run_id = w.jobs.run_now(job_id=job_id).run_id
    assert run_id is not None
    assert [c.status for c in sim.call_log("run-now")] == [503, 503, 503, 200]
    assert [c.fault for c in sim.call_log("run-now")] == ["unavailable"] * 3 + [None]
    assert len(sim.created("runs")) == 1


def test_retry_budget_runs_out_on_a_permanent_fault(
    make_client: Callable[..., WorkspaceClient], sim: SimulatorThread
) -> None:
    w = make_client(retry_timeout_seconds=5)
    sim.inject_fault("rate_limit", path="jobs/list", retry_after=1)
    with pytest.raises(TimeoutError) as info:
        list(w.jobs.list())
    assert isinstance(info.value.__cause__, TooManyRequests)
    assert 3 <= sim.calls("jobs/list") <= 5


def test_real_clock_retry_with_retry_after_zero(sim: SimulatorThread) -> None:
    w = WorkspaceClient(
        config=Config(host=sim.url, token="t", auth_type="pat", retry_timeout_seconds=10)
    )
    sim.inject_fault("rate_limit", times=1, retry_after=0)
    started = time.monotonic()
    assert list(w.jobs.list()) == []
    assert time.monotonic() - started < 2.5
    assert [c.status for c in sim.call_log("jobs/list")] == [429, 200]


def test_dropped_connection_after_commit_is_retried_and_deduped(
    w: WorkspaceClient, sim: SimulatorThread
) -> None:
    job_id = _job(w)
    sim.inject_fault("drop_after_commit", path="run-now", times=1)
    with pytest.raises(requests.ConnectionError):
        requests.post(
            f"{sim.url}/api/2.2/jobs/run-now", json={"job_id": job_id}, headers=AUTH, timeout=5
        )
    assert len(sim.created("runs")) == 1  # the effect happened although nobody heard of it
    sim.inject_fault("drop_after_commit", path="run-now", times=1)
    # The SDK retries a POST that lost its connection: with a token it gets the same run.
    run_id = w.jobs.run_now(job_id=job_id, idempotency_token="once").run_id
    assert [c.fault for c in sim.call_log("run-now")][-2:] == ["drop_after_commit", None]
    assert [e.entity_id for e in sim.created("runs", idempotency_token="once")] == [str(run_id)]


def test_dropped_connection_without_token_creates_twice(
    w: WorkspaceClient, sim: SimulatorThread
) -> None:
    job_id = _job(w)
    sim.inject_fault("drop_after_commit", path="run-now", times=1)
    w.jobs.run_now(job_id=job_id)
    # Databricks semantics: without an idempotency token the retried POST is a second run.
    assert len(sim.created("runs", job_id=job_id)) == 2


def test_slow_responses(sim: SimulatorThread) -> None:
    sim.inject_fault("slow", path="jobs/list", delay=0.3, times=1)
    started = time.monotonic()
    requests.get(f"{sim.url}/api/2.2/jobs/list", headers=AUTH, timeout=5)
    assert time.monotonic() - started >= 0.3
    sim.inject_fault("slow", path="jobs/list", delay=0.4, times=1)
    with pytest.raises(requests.Timeout):
        requests.get(f"{sim.url}/api/2.2/jobs/list", headers=AUTH, timeout=0.1)


def _statuses_with_seed(seed: int) -> list[int]:
    with SimulatorThread(seed=seed) as sim:
        sim.inject_fault("unavailable", probability=0.5)
        return [
            requests.get(f"{sim.url}/api/2.2/jobs/list", headers=AUTH, timeout=5).status_code
            for _ in range(20)
        ]


def test_probabilistic_faults_are_seeded() -> None:
    first = _statuses_with_seed(7)
    assert first == _statuses_with_seed(7)
    assert 503 in first and 200 in first


def test_faults_spare_control_and_discovery(sim: SimulatorThread) -> None:
    sim.inject_fault("unavailable")
    w = WorkspaceClient(
        config=Config(host=sim.url, token="t", auth_type="pat", retry_timeout_seconds=1)
    )
    assert w.config.workspace_id  # .well-known answered despite the global fault
    assert requests.get(f"{sim.url}/_sim/faults", timeout=5).json()["faults"][0]["hits"] == 0
    sim.clear_faults()
    assert list(w.jobs.list()) == []
    assert sim.calls("/.well-known/databricks-config", method="GET") >= 1
