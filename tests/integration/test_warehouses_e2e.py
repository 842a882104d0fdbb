"""Warehouses.* end to end: gRPC API → server → simulator, on a manual simulator clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from family_helpers import (
    SETTLE,
    assert_cancelled,
    assert_timed_out,
    calls_reach,
    future,
    manual_simulator,
    metadata_when,
    outcome,
    rest,
    seconds,
)

from lro_server._proto.lro.databricks.v1 import warehouses_pb2, warehouses_pb2_grpc
from lro_server.testing.databricks_sim import SimulatorThread

API = "/api/2.0/sql/warehouses"


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    yield from manual_simulator()


@pytest.fixture
def warehouses(channel):
    return warehouses_pb2_grpc.WarehousesStub(channel)


def _future(op, operations):
    return future(op, operations, warehouses_pb2.Warehouse, warehouses_pb2.WarehouseMetadata)


def _existing(sim, *, running: bool) -> str:
    warehouse_id = str(rest(sim)("POST", API, body={"name": "base", "cluster_size": "Small"})["id"])
    sim.advance(SETTLE)
    if not running:
        rest(sim)("POST", f"{API}/{warehouse_id}/stop", body={})
        sim.advance(SETTLE)
    return warehouse_id


def _call(sim, warehouses, method: str, name: str = "new", preset: str = "", **extra):
    if method == "Create":
        if preset:
            sim.set_timeline("warehouses", preset, name=name)
        request = warehouses_pb2.CreateWarehouseRequest(name=name, cluster_size="Small", **extra)
        return warehouses.Create(request), ""
    warehouse_id = _existing(sim, running=method in ("Stop", "Edit"))
    if preset:
        sim.set_timeline("warehouses", preset, id=warehouse_id)
    if method == "Start":
        return warehouses.Start(warehouses_pb2.StartWarehouseRequest(id=warehouse_id, **extra)), (
            warehouse_id
        )
    if method == "Stop":
        return warehouses.Stop(warehouses_pb2.StopWarehouseRequest(id=warehouse_id, **extra)), (
            warehouse_id
        )
    request = warehouses_pb2.EditWarehouseRequest(id=warehouse_id, auto_stop_mins=10, **extra)
    return warehouses.Edit(request), warehouse_id


STARTING = ["Create", "Start", "Edit"]


@pytest.mark.parametrize("method", [*STARTING, "Stop"])
def test_success(sim, warehouses, operations, method):
    op, _ = _call(sim, warehouses, method)
    fut = _future(op, operations)
    metadata_when(fut, lambda m: m.warehouse_id != "" and m.state != "", "the warehouse")
    sim.advance(SETTLE)
    warehouse = fut.result(timeout=30)
    assert warehouse.state == ("STOPPED" if method == "Stop" else "RUNNING")
    assert warehouse.warehouse_url.endswith(f"/sql/warehouses/{warehouse.id}")
    if method == "Create":
        tags = warehouse.details["tags"]["custom_tags"]
        assert {"key": "lro_operation_id", "value": op.name.split("/")[1]} in [
            dict(t) for t in tags
        ]
        assert len(sim.created("warehouses")) == 1


@pytest.mark.parametrize(
    ("preset", "code", "message"),
    [
        (
            "failed_start",
            14,
            "Cluster failed to start: the cloud provider has no capacity. "
            "(CLOUD_PROVIDER_LAUNCH_FAILURE)",
        ),
        (
            "deleted_while_starting",
            5,
            "The warehouse was deleted while starting. (CLOUD_PROVIDER_LAUNCH_FAILURE)",
        ),
    ],
)
@pytest.mark.parametrize("method", STARTING)
def test_failure_carries_the_health_summary(
    sim, warehouses, operations, method, preset, code, message
):
    op, _ = _call(sim, warehouses, method, preset=preset)
    fut = _future(op, operations)
    metadata_when(fut, lambda m: m.state == "STARTING", "the start")
    sim.advance(SETTLE)
    op = outcome(fut)
    assert (op.error.code, op.error.message) == (code, message)


def test_stop_failure_when_deleted(sim, warehouses, operations):
    op, warehouse_id = _call(sim, warehouses, "Stop")
    fut = _future(op, operations)
    metadata_when(fut, lambda m: m.state == "STOPPING", "the stop")
    sim.finish("warehouses", warehouse_id, "DELETED", health={"summary": "Deleted by admin."})
    op = outcome(fut)
    assert (op.error.code, op.error.message) == (5, "Deleted by admin.")


@pytest.mark.parametrize("method", STARTING)
def test_cancel_stops_the_warehouse(sim, warehouses, operations, method):
    op, _ = _call(sim, warehouses, method)
    fut = _future(op, operations)
    metadata_when(fut, lambda m: m.state == "STARTING", "the start")
    before = sim.calls(path_contains="/stop")
    assert fut.cancel()
    calls_reach(sim, "/stop", before + 1)
    sim.advance(SETTLE)
    assert_cancelled(outcome(fut))
    assert fut.metadata.state == "STOPPED"


def test_cancel_of_a_stop_leaves_it_going(sim, warehouses, operations):
    op, _ = _call(sim, warehouses, "Stop")
    fut = _future(op, operations)
    metadata_when(fut, lambda m: m.state == "STOPPING", "the stop")
    fut.cancel()
    sim.advance(SETTLE)
    assert fut.result(timeout=30).state == "STOPPED"


@pytest.mark.parametrize("method", [*STARTING, "Stop"])
def test_timeout(sim, warehouses, operations, method):
    op, _ = _call(sim, warehouses, method, timeout=seconds(1))
    assert_timed_out(outcome(_future(op, operations)))
