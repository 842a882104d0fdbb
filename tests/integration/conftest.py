"""Fixtures: a Databricks simulator and a real lro-server on free loopback ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from google.api_core import operations_v1

from lro_server.cli.app import AppConfig
from lro_server.databricks.client import DatabricksOptions
from lro_server.testing.databricks_sim import SimulatorThread
from lro_server.testing.server_thread import ServerThread


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    """A Databricks REST simulator on 127.0.0.1."""
    with SimulatorThread() as simulator:
        yield simulator


def fast_config(store: str, sim_url: str, **overrides: object) -> AppConfig:
    """A server configuration that polls quickly, for tests."""
    values: dict[str, object] = {
        "store": store,
        "databricks": DatabricksOptions(
            host=sim_url, token="test-token", call_timeout_seconds=10, requests_per_second=1000
        ),
        "poll_interval_seconds": 0.05,
        "max_poll_interval_seconds": 0.2,
        "first_poll_seconds": 0.02,
        "lease_seconds": 3.0,
    }
    values.update(overrides)
    return AppConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """A fresh SQLite store file."""
    return f"sqlite:///{tmp_path}/lro.db"


@pytest.fixture
def make_server(sim: SimulatorThread, store_url: str) -> Iterator[Callable[..., ServerThread]]:
    """Start servers on the test's store and simulator; all are stopped at the end."""
    started: list[ServerThread] = []

    def make(**overrides: object) -> ServerThread:
        server = ServerThread(fast_config(store_url, sim.url, **overrides)).start()
        started.append(server)
        return server

    yield make
    for server in started:
        if server.app is not None:
            server.stop()


@pytest.fixture
def server(make_server: Callable[..., ServerThread]) -> ServerThread:
    """One running server."""
    return make_server()


@pytest.fixture
def channel(server: ServerThread) -> Iterator[grpc.Channel]:
    """A gRPC channel to the server."""
    with grpc.insecure_channel(server.grpc_target) as chan:
        yield chan


@pytest.fixture
def operations(channel: grpc.Channel) -> operations_v1.OperationsClient:
    """google-api-core's own Operations client over gRPC."""
    return operations_v1.OperationsClient(channel)


@pytest.fixture
def create_job(sim: SimulatorThread) -> Callable[..., int]:
    """Create a job in the simulator through the real SDK; returns its id."""
    from databricks.sdk import WorkspaceClient

    client = WorkspaceClient(host=sim.url, token="test-token", auth_type="pat")

    def create(name: str = "job", tasks: int = 1) -> int:
        body = {
            "name": name,
            "tasks": [
                {"task_key": f"t{i}", "notebook_task": {"notebook_path": f"/nb{i}"}}
                for i in range(tasks)
            ],
        }
        answer = client.api_client.do("POST", "/api/2.2/jobs/create", body=body)
        assert isinstance(answer, dict)
        return int(answer["job_id"])

    return create


@pytest.fixture
def jobs(channel: grpc.Channel) -> object:
    """Stub of lro.databricks.v1.Jobs."""
    from lro_server._proto.lro.databricks.v1 import jobs_pb2_grpc

    return jobs_pb2_grpc.JobsStub(channel)
