"""Clusters.* end to end: gRPC API → server → simulator, on a manual simulator clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from family_helpers import (
    CLUSTER_SPEC,
    SETTLE,
    assert_cancelled,
    assert_timed_out,
    calls_reach,
    future,
    manual_simulator,
    metadata_when,
    outcome,
    running_cluster,
    seconds,
    terminated_cluster,
)

from lro_server._proto.lro.databricks.v1 import clusters_pb2, clusters_pb2_grpc
from lro_server.testing.databricks_sim import SimulatorThread


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    yield from manual_simulator()


@pytest.fixture
def clusters(channel):
    return clusters_pb2_grpc.ClustersStub(channel)


def _future(op, operations):
    return future(op, operations, clusters_pb2.Cluster, clusters_pb2.ClusterMetadata)


def _create(name: str, **extra) -> clusters_pb2.CreateClusterRequest:
    return clusters_pb2.CreateClusterRequest(cluster_name=name, **CLUSTER_SPEC, **extra)


def _call(sim, clusters, method: str, **extra):
    """Start ``method`` on a cluster in the state it needs; return (operation, cluster id)."""
    if method == "Create":
        return clusters.Create(_create("new", **extra)), ""
    if method == "Start":
        cluster_id = terminated_cluster(sim)
        return clusters.Start(clusters_pb2.StartClusterRequest(cluster_id=cluster_id, **extra)), (
            cluster_id
        )
    cluster_id = running_cluster(sim)
    requests = {
        "Restart": lambda: clusters.Restart(
            clusters_pb2.RestartClusterRequest(cluster_id=cluster_id, **extra)
        ),
        "Resize": lambda: clusters.Resize(
            clusters_pb2.ResizeClusterRequest(cluster_id=cluster_id, num_workers=3, **extra)
        ),
        "Edit": lambda: clusters.Edit(
            clusters_pb2.EditClusterRequest(
                cluster_id=cluster_id, cluster_name="edited", **CLUSTER_SPEC, **extra
            )
        ),
        "Delete": lambda: clusters.Delete(
            clusters_pb2.DeleteClusterRequest(cluster_id=cluster_id, **extra)
        ),
    }
    return requests[method](), cluster_id


RUNNING_GOAL = ["Create", "Start", "Restart", "Resize", "Edit"]


@pytest.mark.parametrize("method", [*RUNNING_GOAL, "Delete"])
def test_success(sim, clusters, operations, method):
    op, _ = _call(sim, clusters, method)
    assert not op.done and op.name.startswith("operations/")
    fut = _future(op, operations)
    metadata_when(fut, lambda m: m.cluster_id != "", "the cluster id")
    sim.advance(SETTLE)
    cluster = fut.result(timeout=30)
    assert cluster.state == ("TERMINATED" if method == "Delete" else "RUNNING")
    assert cluster.cluster_url.endswith(f"/#setting/clusters/{cluster.cluster_id}/configuration")
    assert fut.metadata.action == method.upper()
    if method == "Resize":
        assert cluster.num_workers == 3
    if method == "Create":
        token = op.name.split("/")[1]
        assert cluster.details["custom_tags"]["lro_operation_id"] == token
        assert len(sim.created("clusters")) == 1


def test_create_failure_carries_the_termination_reason(sim, clusters, operations):
    sim.set_timeline("clusters", "terminated_on_start", cluster_name="bad")
    fut = _future(clusters.Create(_create("bad")), operations)
    metadata_when(fut, lambda m: m.cluster_id != "", "the cluster id")
    sim.advance(SETTLE)
    op = outcome(fut)
    assert op.error.code == 14  # CLOUD_FAILURE: retrying later may work
    assert op.error.message == (
        "The cloud provider has no capacity for i3.xlarge. (CLOUD_PROVIDER_LAUNCH_FAILURE)"
    )
    assert fut.metadata.termination_reason.type == "CLOUD_FAILURE"


def test_start_failure_in_error_state(sim, clusters, operations):
    cluster_id = terminated_cluster(sim)
    sim.set_timeline("clusters", "error", cluster_id=cluster_id)
    fut = _future(
        clusters.Start(clusters_pb2.StartClusterRequest(cluster_id=cluster_id)), operations
    )
    metadata_when(fut, lambda m: m.state == "PENDING", "the start")
    sim.advance(SETTLE)
    op = outcome(fut)
    assert op.error.code == 2
    assert op.error.message == "Spark failed to start: the driver did not respond."


@pytest.mark.parametrize("method", ["Restart", "Resize", "Edit", "Delete"])
def test_failure_while_changing(sim, clusters, operations, method):
    op, cluster_id = _call(sim, clusters, method)
    fut = _future(op, operations)
    metadata_when(fut, lambda m: m.state != "", "the first observation")
    sim.finish("clusters", cluster_id, "ERROR", state_message=f"Driver lost during {method}")
    op = outcome(fut)
    assert op.error.code == 2
    assert op.error.message == f"Driver lost during {method}"


def test_start_of_a_running_cluster_is_refused(sim, clusters):
    import grpc

    cluster_id = running_cluster(sim)
    with pytest.raises(grpc.RpcError) as caught:
        clusters.Start(clusters_pb2.StartClusterRequest(cluster_id=cluster_id))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "unexpected state Running" in caught.value.details()


@pytest.mark.parametrize("method", RUNNING_GOAL)
def test_cancel_terminates_the_cluster(sim, clusters, operations, method):
    op, _ = _call(sim, clusters, method)
    fut = _future(op, operations)
    metadata_when(fut, lambda m: m.cluster_id != "" and m.state != "", "the first observation")
    before = sim.calls(path_contains="clusters/delete")
    assert fut.cancel()
    calls_reach(sim, "clusters/delete", before + 1)
    sim.advance(SETTLE)
    assert_cancelled(outcome(fut))
    assert fut.cancelled()
    assert fut.metadata.state == "TERMINATED" and fut.metadata.cancel_requested


def test_cancel_of_a_delete_leaves_it_going(sim, clusters, operations):
    op, _ = _call(sim, clusters, "Delete")
    fut = _future(op, operations)
    metadata_when(fut, lambda m: m.state == "TERMINATING", "the termination")
    fut.cancel()
    sim.advance(SETTLE)
    assert fut.result(timeout=30).state == "TERMINATED"


def test_edit_of_a_terminated_cluster_is_done_without_starting_it(sim, clusters, operations):
    cluster_id = terminated_cluster(sim)
    request = clusters_pb2.EditClusterRequest(cluster_id=cluster_id, **CLUSTER_SPEC)
    cluster = _future(clusters.Edit(request), operations).result(timeout=30)
    assert cluster.state == "TERMINATED"


@pytest.mark.parametrize("method", [*RUNNING_GOAL, "Delete"])
def test_timeout(sim, clusters, operations, method):
    op, _ = _call(sim, clusters, method, timeout=seconds(1))
    assert_timed_out(outcome(_future(op, operations)))
    if method != "Delete":  # the work is stopped: the cluster is terminated
        assert sim.calls(path_contains="clusters/delete") >= 1
