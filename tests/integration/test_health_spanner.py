"""Readiness follows a real Spanner (the emulator) both ways: down when calls fail, up when it
answers again.

The test starts an emulator of its own, stops its process (by pid) and starts it again on
the same port, where the database is created again (the emulator keeps nothing across a
restart). The scheduled health ping is made rare (60 s), so what the test sees can only
come from the two faster paths: a store call that fails with UNAVAILABLE makes the monitor
ping at once, and while the store does not answer the monitor pings every 0.25 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import requests
from google.longrunning import operations_pb2, operations_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from spanner_fixtures import require_emulator_binary

from lro_server.cli.app import AppConfig
from lro_server.databricks.client import DatabricksOptions
from lro_server.storage.spanner_open import open_spanner_store
from lro_server.testing.polling import wait_until
from lro_server.testing.server_thread import ServerThread
from lro_server.testing.spanner_emulator import SpannerEmulator

pytestmark = pytest.mark.spanner

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
MISSING = "operations/00000000-0000-4000-8000-000000000042"


@pytest.fixture
def emulator() -> Iterator[SpannerEmulator]:
    """An emulator of this test's own (the shared one must not be stopped)."""
    own = SpannerEmulator(require_emulator_binary())
    own.start()
    try:
        with own.activated():
            yield own
    finally:
        own.stop()


@pytest.fixture
def server(emulator: SpannerEmulator) -> Iterator[tuple[ServerThread, str]]:
    url = emulator.create_database()
    # A short call deadline: a read during the outage fails within seconds, not 30.
    store = asyncio.run(open_spanner_store(url, threads=4, call_timeout=2.0))
    config = AppConfig(
        store=url,
        databricks=DatabricksOptions(host="http://127.0.0.1:9", token="unused"),
        health_check_seconds=60,
    )
    with ServerThread(config, store=store) as running:
        yield running, url


def _health(channel: grpc.Channel) -> int:
    answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return int(answer.status)


def _get_code(stub: Any) -> grpc.StatusCode:
    try:
        stub.GetOperation(operations_pb2.GetOperationRequest(name=MISSING), timeout=20)
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_readiness_follows_the_store_down_and_up(
    emulator: SpannerEmulator, server: tuple[ServerThread, str]
) -> None:
    running, url = server
    readyz = running.http_url + "/readyz"
    with grpc.insecure_channel(running.grpc_target) as channel:
        stub = operations_pb2_grpc.OperationsStub(channel)
        assert _health(channel) == SERVING
        assert _get_code(stub) == grpc.StatusCode.NOT_FOUND  # the store answers

        port = emulator.port
        emulator.stop()  # ends the emulator's process, by its pid
        assert _get_code(stub) == grpc.StatusCode.UNAVAILABLE

        wait_until(lambda: _health(channel) == NOT_SERVING, timeout=15, what="NOT_SERVING")
        answer = requests.get(readyz, timeout=5)
        assert answer.status_code == 503
        assert "Spanner" in answer.json()["reason"]

        emulator.start(port=port)
        emulator.create_database(url=url)

        wait_until(lambda: _health(channel) == SERVING, timeout=15, what="SERVING again")
        assert requests.get(readyz, timeout=5).status_code == 200
        assert _get_code(stub) == grpc.StatusCode.NOT_FOUND
