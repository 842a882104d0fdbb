"""The simulator's SQL warehouses, driven through the real databricks-sdk."""

from __future__ import annotations

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidState, ResourceDoesNotExist
from databricks.sdk.service import sql

from lro_server.testing.databricks_sim import ManualClock, SimulatorThread

State = sql.State


def _create(w: WorkspaceClient, name: str = "bi") -> str:
    response: object = w.warehouses.create(name=name, cluster_size="Small").response
    assert isinstance(response, sql.CreateWarehouseResponse) and response.id
    return response.id


def test_warehouse_lifecycle(w: WorkspaceClient, sim_clock: ManualClock) -> None:
    warehouse_id = _create(w)
    assert w.warehouses.get(warehouse_id).state == State.STARTING
    sim_clock.advance(0.3)
    got = w.warehouses.get(warehouse_id)
    assert got.state == State.RUNNING and got.health is not None
    assert got.health.status == sql.Status.HEALTHY
    w.warehouses.edit(warehouse_id, cluster_size="Large")
    got = w.warehouses.get(warehouse_id)
    assert got.state == State.STARTING and got.cluster_size == "Large"
    sim_clock.advance(0.3)
    w.warehouses.stop(warehouse_id)
    assert w.warehouses.get(warehouse_id).state == State.STOPPING
    with pytest.raises(InvalidState):
        w.warehouses.start(warehouse_id)
    sim_clock.advance(0.1)
    assert w.warehouses.get(warehouse_id).state == State.STOPPED
    w.warehouses.edit(warehouse_id, cluster_size="Medium")
    assert w.warehouses.get(warehouse_id).state == State.STOPPED
    w.warehouses.start(warehouse_id)
    assert w.warehouses.get(warehouse_id).state == State.STARTING
    assert [x.id for x in w.warehouses.list()] == [warehouse_id]
    w.warehouses.delete(warehouse_id)
    assert w.warehouses.get(warehouse_id).state == State.DELETING
    sim_clock.advance(0.1)
    assert w.warehouses.get(warehouse_id).state == State.DELETED
    assert list(w.warehouses.list()) == []
    with pytest.raises(InvalidState):
        w.warehouses.start(warehouse_id)
    with pytest.raises(ResourceDoesNotExist):
        w.warehouses.get("ffffffffffffffff")


def test_failures_while_starting(
    w: WorkspaceClient, sim: SimulatorThread, sim_clock: ManualClock
) -> None:
    sim.set_timeline("warehouses", "failed_start", name="starved")
    sim.set_timeline("warehouses", "deleted_while_starting", name="gone")
    starved, gone = _create(w, "starved"), _create(w, "gone")
    sim_clock.advance(1)
    got = w.warehouses.get(starved)
    assert got.state == State.STOPPED and got.health is not None
    assert got.health.status == sql.Status.FAILED
    assert got.health.summary == "Cluster failed to start: the cloud provider has no capacity."
    assert got.health.failure_reason is not None
    got = w.warehouses.get(gone)
    assert got.state == State.DELETED and got.health is not None and got.health.summary


def test_held_warehouse_finished_by_control(
    w: WorkspaceClient, sim: SimulatorThread, sim_clock: ManualClock
) -> None:
    sim.set_timeline("warehouses", "hold")
    warehouse_id = _create(w)
    sim_clock.advance(60)
    assert w.warehouses.get(warehouse_id).state == State.STARTING
    sim.finish("warehouses", warehouse_id, "RUNNING", health={"status": "HEALTHY"})
    assert w.warehouses.get(warehouse_id).state == State.RUNNING
    assert sim.created("warehouses", name="bi")[0].entity_id == warehouse_id
