"""Databricks not configured, unreachable, or silent: a start explains itself, in seconds.

The bounds asserted here are functional, with a wide margin: before, a start against a
closed port or a silent host held the call for 60-120 s (the SDK's host-metadata probe and
its retry budget); now the start answers within its budget (5 s by default).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from lro_steps import error_info, grpc_status

from lro_server._proto.lro.databricks.v1 import jobs_pb2, jobs_pb2_grpc
from lro_server.cli.app import AppConfig
from lro_server.cli.logs import redact
from lro_server.core.deadline import serving
from lro_server.core.errors import FailedPrecondition, Unavailable
from lro_server.databricks.client import Databricks, DatabricksOptions
from lro_server.testing.polling import wait_until
from lro_server.testing.server_thread import ServerThread

#: Far above the 5 s start budget, far below the 60-120 s a start used to take.
ANSWERS_WITHIN = 15.0


@pytest.fixture
def no_databricks_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An environment with no Databricks configuration at all (no variables, no profile)."""
    import os

    for name in list(os.environ):
        if name.startswith(("DATABRICKS_", "ARM_", "AZURE_", "GOOGLE_CREDENTIALS")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "absent.cfg"))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_host() -> Iterator[str]:
    """A host whose port accepts connections (the kernel's backlog) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()  # pending connections are reset: no thread stays blocked on a read


def _server(store: str, host: str | None, token: str | None) -> ServerThread:
    databricks = DatabricksOptions(
        host=host, token=token, http_timeout_seconds=2, call_timeout_seconds=4
    )
    config = AppConfig(store=store, databricks=databricks, poll_interval_seconds=0.5)
    return ServerThread(config).start()


def test_no_configuration_is_failed_precondition_with_the_sdk_reason(
    no_databricks_config, store_url, caplog
):
    caplog.set_level(logging.WARNING, logger="lro_server")
    server = _server(store_url, None, None)
    try:
        warning = wait_until(
            lambda: [r for r in caplog.records if "Databricks is not configured" in r.message],
            what="the startup warning",
        )
        assert len(warning) == 1
        line = warning[0].getMessage()
        assert warning[0].levelno == logging.WARNING and "\n" not in line
        assert "DATABRICKS_HOST" in line and "lro-server simulate-databricks" in line
        assert "default auth: cannot configure default credentials" in line  # the SDK's words
        assert redact(line) == line  # the hint survives the log's masking of secrets
        with grpc.insecure_channel(server.grpc_target) as channel:
            jobs = jobs_pb2_grpc.JobsStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                jobs.RunNow(jobs_pb2.RunNowRequest(job_id=1), timeout=30)
        error = caught.value
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error.details().startswith(
            "Databricks is not configured: default auth: cannot configure default credentials"
        )
        assert "DATABRICKS_HOST" in error.details()
        assert error_info(grpc_status(error)).reason == "DATABRICKS_NOT_CONFIGURED"
    finally:
        server.stop()


@pytest.mark.parametrize("where", ["closed port", "silent host"])
def test_a_start_against_an_unreachable_databricks_answers_in_seconds(
    where, store_url, silent_host, caplog
):
    host = f"http://127.0.0.1:{_closed_port()}" if where == "closed port" else silent_host
    server = _server(store_url, host, "t")
    try:
        with grpc.insecure_channel(server.grpc_target) as channel:
            jobs = jobs_pb2_grpc.JobsStub(channel)
            started = time.monotonic()
            op = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=1), timeout=60)
            took = time.monotonic() - started
        assert took < ANSWERS_WITHIN, f"RunNow took {took:.1f}s"
        # The start is deferred, not refused: the operation exists and is retried later.
        assert op.name.startswith("operations/") and not op.done
        assert any("start deferred" in r.getMessage() for r in caplog.records)
    finally:
        server.stop()


@pytest.mark.parametrize("where", ["closed port", "silent host"])
async def test_calls_of_a_start_keep_to_the_start_budget(where, silent_host):
    host = f"http://127.0.0.1:{_closed_port()}" if where == "closed port" else silent_host
    options = DatabricksOptions(host=host, token="t", start_timeout_seconds=2)
    client = Databricks(options)
    try:
        started = time.monotonic()
        with serving(None), pytest.raises(Unavailable):
            await client.call("POST", "/api/2.2/jobs/run-now", body={"job_id": 1}, idempotent=True)
        took = time.monotonic() - started
        # The host-metadata probe (connect timeout + 1 s of retries), then the 2 s budget.
        assert took < options.connect_timeout_seconds + 1 + options.start_timeout_seconds + 2
    finally:
        await client.close()


async def test_an_unconfigured_client_says_so_without_a_network_call(no_databricks_config):
    client = Databricks(DatabricksOptions())
    try:
        problem = await client.configuration_problem()
        assert isinstance(problem, FailedPrecondition)
        assert problem.reason == "DATABRICKS_NOT_CONFIGURED"
        with pytest.raises(FailedPrecondition):
            await client.call("GET", "/api/2.2/jobs/list")
    finally:
        await client.close()
