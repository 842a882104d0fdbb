"""Every ``@type`` the server can put in an ``Any`` resolves from protos/descriptor_set.pb alone.

A client generated in another language from what we publish must be able to read a failed
operation: its metadata, its response, and the google.rpc details in ``Operation.error`` and
in RPC errors. The types are gathered two ways: from the API (each method's operation_info
and the detail messages the code packs), and from real answers of a live server.
"""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest
from google.longrunning import operations_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_status import rpc_status

from lro_server import v1
from lro_server.client import Client
from lro_server.client._requests import method_descriptor, operation_types

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "protos" / "descriptor_set.pb"


@pytest.fixture(scope="module")
def published() -> descriptor_pool.DescriptorPool:
    """A pool holding the published descriptor set and nothing else."""
    files = descriptor_pb2.FileDescriptorSet.FromString(PUBLISHED.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return pool


def _resolves(pool: descriptor_pool.DescriptorPool, type_url: str) -> bool:
    try:
        pool.FindMessageTypeByName(type_url.rsplit("/", 1)[-1])
    except KeyError:
        return False
    return True


def _declared_types() -> set[str]:
    """Metadata and responses of every method, and every google.rpc detail the code packs."""
    names = {"google.rpc.Status"}
    for service in v1.SERVICES:
        pool = descriptor_pool.Default()
        for method in pool.FindServiceByName(service).methods:
            if method.output_type.full_name == operations_pb2.Operation.DESCRIPTOR.full_name:
                response, metadata = operation_types(method_descriptor(service, method.name))
                names |= {response.DESCRIPTOR.full_name, metadata.DESCRIPTOR.full_name}
    packed = re.compile(r"error_details_pb2\.(\w+)")
    for path in (ROOT / "lro_server").rglob("*.py"):
        if "_proto" not in path.parts:
            names |= {f"google.rpc.{n}" for n in packed.findall(path.read_text())}
    return names


def test_every_declared_type_resolves(published):
    declared = _declared_types()
    assert "google.rpc.ErrorInfo" in declared and "lro.databricks.v1.RunMetadata" in declared
    assert sorted(n for n in declared if not _resolves(published, n)) == []
    # The other google.rpc details are published too, for what a future version packs.
    for name in ("RetryInfo", "BadRequest", "ResourceInfo", "ErrorInfo", "Help"):
        assert _resolves(published, f"google.rpc.{name}")


def test_every_type_in_real_answers_resolves(published, server, sim, create_job):
    seen: set[str] = set()
    with Client(server.grpc_target) as client:
        ok = client.jobs.run_now(job_id=create_job("ok"))
        ok.result(timeout=60)
        failing = create_job("failing")
        sim.set_timeline("runs", "failed", job_id=failing)
        chain = client.chains.run(
            steps=[{"run_now": {"job_id": failing}}, {"run_now": {"job_id": failing}}]
        )
        chain.exception(timeout=60)
        for operation in client.operations.list():
            seen.add(operation.metadata.type_url)
            if operation.HasField("response"):
                seen.add(operation.response.type_url)
            seen |= {detail.type_url for detail in operation.error.details}
    assert any("ErrorInfo" in url for url in seen)  # a failed operation carries details
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = operations_pb2.GetOperationRequest
        call = channel.unary_unary(
            "/google.longrunning.Operations/GetOperation",
            request_serializer=stub.SerializeToString,
        )
        with pytest.raises(grpc.RpcError) as caught:
            call(stub(name="operations/0b7e3c1a-5f0e-4d9b-9a51-6f0c2d1e8a47"), timeout=10)
    status = rpc_status.from_call(caught.value)  # type: ignore[arg-type]
    assert status is not None
    seen |= {detail.type_url for detail in status.details}
    assert seen and sorted(url for url in seen if not _resolves(published, url)) == []
