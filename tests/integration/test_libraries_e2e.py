"""Libraries.* end to end: gRPC API → server → simulator (manual clock)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from family_helpers import (
    SETTLE,
    assert_timed_out,
    future,
    manual_simulator,
    metadata_when,
    outcome,
    rest,
    running_cluster,
    seconds,
)
from google.protobuf import struct_pb2

from lro_server._proto.lro.databricks.v1 import libraries_pb2, libraries_pb2_grpc
from lro_server.testing.databricks_sim import SimulatorThread

GOOD = {"pypi": {"package": "numpy==2.0"}}
BAD = {"pypi": {"package": "simulated-package==9.9"}}


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    yield from manual_simulator()


@pytest.fixture
def libraries(channel):
    return libraries_pb2_grpc.LibrariesStub(channel)


def _struct(value: dict) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


def _future(op, operations):
    return future(op, operations, libraries_pb2.LibrariesResult, libraries_pb2.LibrariesMetadata)


def _install(libraries, cluster_id: str, *specs: dict, **extra):
    request = libraries_pb2.InstallLibrariesRequest(
        cluster_id=cluster_id, libraries=[_struct(s) for s in specs], **extra
    )
    return libraries.Install(request)


def _uninstall(libraries, cluster_id: str, *specs: dict, **extra):
    request = libraries_pb2.UninstallLibrariesRequest(
        cluster_id=cluster_id, libraries=[_struct(s) for s in specs], **extra
    )
    return libraries.Uninstall(request)


def test_install_success(sim, libraries, operations):
    cluster_id = running_cluster(sim)
    fut = _future(_install(libraries, cluster_id, GOOD), operations)
    metadata_when(fut, lambda m: m.libraries[0].status != "", "a status")
    sim.advance(SETTLE)
    result = fut.result(timeout=30)
    assert [lib.status for lib in result.libraries] == ["INSTALLED"]
    assert fut.metadata.progress_percent == 100


def test_install_failure_carries_the_messages(sim, libraries, operations):
    cluster_id = running_cluster(sim)
    sim.set_timeline("libraries", "failed", library="pypi:simulated-package==9.9")
    fut = _future(_install(libraries, cluster_id, GOOD, BAD), operations)
    metadata_when(fut, lambda m: m.libraries[0].status != "", "a status")
    sim.advance(SETTLE)
    op = outcome(fut)
    assert op.error.code == 2
    assert op.error.message == (
        "library failed: pypi:simulated-package==9.9: Library installation failed for library "
        "due to user error. Error messages:\nERROR: No matching distribution found for "
        "simulated-package==9.9"
    )


def test_cancel_leaves_an_install_going(sim, libraries, operations):
    cluster_id = running_cluster(sim)
    fut = _future(_install(libraries, cluster_id, GOOD), operations)
    metadata_when(fut, lambda m: m.libraries[0].status != "", "a status")
    fut.cancel()
    metadata_when(fut, lambda m: m.cancel_requested, "the cancel to be seen")
    sim.advance(SETTLE)
    assert [lib.status for lib in fut.result(timeout=30).libraries] == ["INSTALLED"]


def test_install_timeout(sim, libraries, operations):
    cluster_id = running_cluster(sim)
    sim.set_timeline("libraries", "hold")
    fut = _future(_install(libraries, cluster_id, GOOD, timeout=seconds(1)), operations)
    metadata_when(fut, lambda m: m.libraries[0].status != "", "a status")
    sim.advance(SETTLE)
    assert_timed_out(outcome(fut))


def _installed(sim, cluster_id: str) -> None:
    rest(sim)(
        "POST", "/api/2.0/libraries/install", body={"cluster_id": cluster_id, "libraries": [GOOD]}
    )
    sim.advance(SETTLE)


def test_uninstall_success(sim, libraries, operations):
    cluster_id = running_cluster(sim)
    _installed(sim, cluster_id)
    result = _future(_uninstall(libraries, cluster_id, GOOD), operations).result(timeout=30)
    assert [lib.status for lib in result.libraries] == ["UNINSTALL_ON_RESTART"]


def test_uninstall_failure_on_a_missing_cluster(libraries):
    with pytest.raises(grpc.RpcError) as caught:
        _uninstall(libraries, "0101-nope", GOOD)
    # Databricks says 400 INVALID_PARAMETER_VALUE; the cluster the request names is missing.
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "Cluster 0101-nope does not exist"


def test_cancel_leaves_an_uninstall_going(sim, libraries, operations):
    cluster_id = running_cluster(sim)
    _installed(sim, cluster_id)
    sim.inject_fault("unavailable", path="libraries/(cluster-status|all-cluster)", times=1)
    fut = _future(_uninstall(libraries, cluster_id, GOOD), operations)
    fut.cancel()
    assert [lib.status for lib in fut.result(timeout=30).libraries] == ["UNINSTALL_ON_RESTART"]


def test_uninstall_timeout_while_databricks_cannot_be_read(sim, make_server):
    from google.api_core import operations_v1

    from lro_server.databricks.client import DatabricksOptions

    # A short retry budget per call, so that the deadline is checked soon after it passes.
    options = DatabricksOptions(host=sim.url, token="t", call_timeout_seconds=0.5)
    server = make_server(databricks=options)
    cluster_id = running_cluster(sim)
    _installed(sim, cluster_id)
    sim.inject_fault("unavailable", path="libraries/(cluster-status|all-cluster)", retry_after=0)
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = libraries_pb2_grpc.LibrariesStub(channel)
        operations = operations_v1.OperationsClient(channel)
        fut = _future(_uninstall(stub, cluster_id, GOOD, timeout=seconds(1)), operations)
        assert_timed_out(outcome(fut))
