"""gRPC health follows the store; /healthz and /readyz; server reflection lists our services."""

from __future__ import annotations

import grpc
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from lro_server.core.errors import Unavailable
from lro_server.testing.polling import wait_until

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class StoreSwitch:
    """Makes the server's store answer pings, or fail them as an unreachable backend does."""

    def __init__(self, server) -> None:  # type: ignore[no-untyped-def]
        self.store = server.application.store
        self.up = True
        original = self.store.ping

        async def ping() -> None:
            if not self.up:
                raise Unavailable("the store is unreachable", reason="STORE_DOWN")
            await original()

        self.store.ping = ping  # type: ignore[method-assign]  # instance-level fake


def status(channel: grpc.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(answer.status)


def test_health_and_readiness_follow_the_store(make_server):
    server = make_server(health_check_seconds=0.05)
    switch = StoreSwitch(server)
    with grpc.insecure_channel(server.grpc_target) as channel:
        assert status(channel) == SERVING
        assert status(channel, "google.longrunning.Operations") == SERVING
        assert requests.get(server.http_url + "/readyz", timeout=5).status_code == 200

        switch.up = False
        wait_until(lambda: status(channel) == NOT_SERVING, timeout=10, what="NOT_SERVING")
        assert status(channel, "lro.databricks.v1.Jobs") == NOT_SERVING
        ready = requests.get(server.http_url + "/readyz", timeout=5)
        assert ready.status_code == 503
        assert "unreachable" in ready.json()["reason"]
        # Liveness does not depend on the store: restarting would not bring it back.
        assert requests.get(server.http_url + "/healthz", timeout=5).status_code == 200

        switch.up = True
        wait_until(lambda: status(channel) == SERVING, timeout=10, what="SERVING again")
        assert requests.get(server.http_url + "/readyz", timeout=5).status_code == 200


def test_a_closed_store_is_not_serving(make_server):
    server = make_server(health_check_seconds=0.05)
    backend = server.application.store.inner.inner  # ObservedStore → MeasuredStore → SQLite
    server.run(backend.close())
    with grpc.insecure_channel(server.grpc_target) as channel:
        wait_until(lambda: status(channel) == NOT_SERVING, timeout=10, what="NOT_SERVING")
    assert requests.get(server.http_url + "/readyz", timeout=5).status_code == 503


def test_reflection_lists_and_describes_our_services(server):
    with grpc.insecure_channel(server.grpc_target) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert {
            "google.longrunning.Operations",
            "lro.databricks.v1.Jobs",
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        } <= services
        # `grpcurl describe`: the file defining a service resolves, with its dependencies.
        jobs = database.FindFileContainingSymbol("lro.databricks.v1.Jobs")
        assert jobs.package == "lro.databricks.v1"
        assert "RunNow" in {m.name for s in jobs.service for m in s.method}
        for service in services - {"grpc.reflection.v1alpha.ServerReflection"}:
            assert database.FindFileContainingSymbol(service).name
