"""A background loop that dies is seen: logged, reported on gRPC health and /readyz, restarted.

The tracker's loop is killed by an injected bug: a store whose ``claim`` raises an
exception no code expects (not an LroError, so nothing on the way catches it). The claim
runs in the loop itself, outside the guarded per-operation polls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
from conftest import fast_config
from grpc_health.v1 import health_pb2, health_pb2_grpc
from lro_steps import start_held, wait_done, wait_run_id

from lro_server.storage.sqlite import SqliteStore
from lro_server.testing.polling import wait_until
from lro_server.testing.server_thread import ServerThread

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class BuggyClaims:
    """The SQLite store, except that ``claim`` raises RuntimeError while ``broken``."""

    def __init__(self, inner: SqliteStore) -> None:
        self.inner = inner
        self.broken = False
        self.failures = 0

    async def claim(self, holder: str, lease_seconds: float, limit: int) -> Any:
        if self.broken:
            self.failures += 1
            raise RuntimeError("injected bug in the tracker's loop")
        return await self.inner.claim(holder, lease_seconds, limit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _status(channel: grpc.Channel) -> int:
    answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return int(answer.status)


def _readyz(server: ServerThread) -> requests.Response:
    return requests.get(server.http_url + "/readyz", timeout=5)


@pytest.fixture
def store(tmp_path: Path) -> BuggyClaims:
    return BuggyClaims(SqliteStore(tmp_path / "buggy.db"))


@pytest.fixture
def server(sim: Any, store: BuggyClaims, tmp_path: Path) -> Iterator[ServerThread]:
    """The server on the buggy store (the channel, jobs and operations fixtures use it)."""
    # The health check interval is long: what the test sees comes from the supervisor.
    config = fast_config(f"sqlite:///{tmp_path}/unused.db", sim.url, health_check_seconds=60)
    server = ServerThread(config, store=store).start()
    try:
        yield server
    finally:
        server.stop()


def test_a_dead_tracker_loop_is_not_serving_until_it_runs_again(
    server: ServerThread,
    store: BuggyClaims,
    channel: grpc.Channel,
    sim: Any,
    jobs: Any,
    operations: Any,
    create_job: Callable[..., int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    op = start_held(jobs, sim, create_job("supervised"))
    run_id = wait_run_id(operations, op.name)
    assert _status(channel) == SERVING and _readyz(server).status_code == 200

    with caplog.at_level(logging.ERROR, logger="lro_server.core.supervisor"):
        store.broken = True
        wait_until(lambda: _status(channel) == NOT_SERVING, timeout=20, what="NOT_SERVING")
        reason = wait_until(
            lambda: (r := _readyz(server)).status_code == 503 and r.json()["reason"],
            timeout=20,
            what="503",
        )
    assert "background loop tracker died (RuntimeError: injected bug" in reason
    assert requests.get(server.http_url + "/healthz", timeout=5).status_code == 200
    deaths = [r for r in caplog.records if "tracker died" in r.getMessage()]
    assert deaths and deaths[0].exc_info is not None
    traceback = logging.Formatter().formatException(deaths[0].exc_info)
    assert "injected bug" in traceback  # logged with its traceback

    store.broken = False
    wait_until(lambda: _status(channel) == SERVING, timeout=30, what="SERVING again")
    wait_until(lambda: _readyz(server).status_code == 200, timeout=30, what="200 again")

    assert store.failures >= 1
    assert server.application.supervisor.restarts >= 1
    # The restarted loop tracks again: the held run's end reaches the operation.
    sim.finish_run(run_id, "SUCCESS")
    assert wait_done(operations, op.name, timeout=30).HasField("response")
