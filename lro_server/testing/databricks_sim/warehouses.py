"""SQL warehouses (2.0): create, get, list, start, stop, edit, delete, with health."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import invalid_parameter, invalid_state, not_found
from .paging import page
from .routing import JSON, Route, SimRequest, api
from .timeline import Phase, Progress, Timeline
from .world import World

__all__ = ["WAREHOUSE_PRESETS", "WarehousesFamily"]


def _p(state: str, seconds: float | None = None, **fields: Any) -> Phase:
    return Phase(state, seconds, fields)


_HEALTHY = {"status": "HEALTHY"}
_FAILED = {
    "status": "FAILED",
    "summary": "Cluster failed to start: the cloud provider has no capacity.",
    "details": "InsufficientInstanceCapacity: no capacity for i3.2xlarge in us-west-2a",
    "failure_reason": {
        "code": "CLOUD_PROVIDER_LAUNCH_FAILURE",
        "type": "CLOUD_FAILURE",
        "parameters": {"aws_api_error_code": "InsufficientInstanceCapacity"},
    },
}

#: Named timelines for starting warehouses (create, start, edit of a running one). Phase
#: fields understood: ``health`` (``{status, summary, details, failure_reason}``).
WAREHOUSE_PRESETS: Mapping[str, Timeline] = {
    "default": (_p("STARTING", 0.3), _p("RUNNING", health=_HEALTHY)),
    "hold": (_p("STARTING"),),
    "failed_start": (_p("STARTING", 0.3), _p("STOPPED", health=_FAILED)),
    "deleted_while_starting": (
        _p("STARTING", 0.3),
        _p("DELETED", health={**_FAILED, "summary": "The warehouse was deleted while starting."}),
    ),
    "degraded": (
        _p("STARTING", 0.3),
        _p(
            "RUNNING",
            health={"status": "DEGRADED", "summary": "1 of 2 clusters failed to start."},
        ),
    ),
}

STOP_SECONDS = 0.1
DELETE_SECONDS = 0.1


@dataclass
class Warehouse:
    """A SQL warehouse."""

    warehouse_id: str
    spec: JSON
    progress: Progress


class WarehousesFamily:
    """SQL warehouses: STARTING → RUNNING, STOPPING → STOPPED, DELETING → DELETED."""

    presets: Mapping[str, Mapping[str, Timeline]] = {"warehouses": WAREHOUSE_PRESETS}

    def __init__(self, world: World) -> None:
        """Creates an empty family in ``world``."""
        self._world = world
        self.warehouses: dict[str, Warehouse] = {}

    def reset(self) -> None:
        """Forgets every warehouse."""
        self.warehouses.clear()

    def routes(self) -> list[Route]:
        """Returns the SQL warehouse endpoints."""
        one = "sql/warehouses/{warehouse_id}"
        return [
            Route("POST", api("2.0", "sql/warehouses"), self.create),
            Route("GET", api("2.0", "sql/warehouses"), self.list_warehouses),
            Route("GET", api("2.0", one), self.get),
            Route("DELETE", api("2.0", one), self.delete),
            Route("POST", api("2.0", f"{one}/start"), self.start),
            Route("POST", api("2.0", f"{one}/stop"), self.stop),
            Route("POST", api("2.0", f"{one}/edit"), self.edit),
        ]

    def finish(self, kind: str, entity_id: str, phase: Phase) -> None:
        """Moves warehouse ``entity_id`` to ``phase`` now."""
        self.warehouses[entity_id].progress.restart((phase,), self._world.now())

    def _warehouse(self, req: SimRequest) -> Warehouse:
        warehouse_id = req.params["warehouse_id"]
        found = self.warehouses.get(warehouse_id)
        if found is None:
            raise not_found(f"Warehouse {warehouse_id} does not exist.")
        return found

    def _start_timeline(self, warehouse_id: str, spec: JSON) -> Timeline:
        return self._world.timeline_for(
            "warehouses", [("id", warehouse_id), ("name", spec.get("name"))]
        )

    def create(self, req: SimRequest) -> JSON:
        """POST sql/warehouses: answers ``{"id"}`` and starts the warehouse."""
        if not req.get("name"):
            raise invalid_parameter("Missing required field: name")
        if not req.get("cluster_size"):
            raise invalid_parameter("Missing required field: cluster_size")
        spec = dict(req.body)
        warehouse_id = f"{self._world.new_id():016x}"
        timeline = self._start_timeline(warehouse_id, spec)
        self.warehouses[warehouse_id] = Warehouse(warehouse_id, spec, Progress(timeline, req.now))
        self._world.record_created("warehouses", warehouse_id, name=spec["name"])
        return {"id": warehouse_id}

    def render(self, warehouse: Warehouse, now: float) -> JSON:
        """Returns the GET JSON of ``warehouse`` at ``now``."""
        phase = warehouse.progress.current(now)
        running = phase.state == "RUNNING"
        spec = warehouse.spec
        out: JSON = {
            "max_num_clusters": 1,
            "min_num_clusters": 1,
            "auto_stop_mins": 120,
            "warehouse_type": "PRO",
            **spec,
            "id": warehouse.warehouse_id,
            "state": phase.state,
            "num_clusters": 1 if running else 0,
            "num_active_sessions": 0,
            "creator_name": "simulator@example.com",
            "jdbc_url": f"jdbc:spark://sim:443/default;httpPath=/sql/1.0/warehouses/"
            f"{warehouse.warehouse_id}",
            "odbc_params": {
                "hostname": "sim",
                "path": f"/sql/1.0/warehouses/{warehouse.warehouse_id}",
                "port": 443,
                "protocol": "https",
            },
        }
        health = phase.fields.get("health")
        if health is not None:
            out["health"] = health
        return out

    def get(self, req: SimRequest) -> JSON:
        """GET sql/warehouses/{id}."""
        return self.render(self._warehouse(req), req.now)

    def list_warehouses(self, req: SimRequest) -> JSON:
        """GET sql/warehouses (deleted warehouses are not listed)."""
        alive = [
            w for w in self.warehouses.values() if w.progress.current(req.now).state != "DELETED"
        ]
        chunk, extra = page(alive, req, default_limit=100, max_limit=1000, limit_param="page_size")
        extra.pop("has_more", None)
        return {"warehouses": [self.render(w, req.now) for w in chunk], **extra}

    def start(self, req: SimRequest) -> JSON:
        """POST .../start: from STOPPED (a no-op while STARTING or RUNNING)."""
        warehouse = self._warehouse(req)
        state = warehouse.progress.current(req.now).state
        if state in ("DELETING", "DELETED"):
            raise invalid_state(f"Warehouse {warehouse.warehouse_id} is {state}.")
        if state == "STOPPING":
            raise invalid_state(
                f"Warehouse {warehouse.warehouse_id} is stopping; start it once it is STOPPED."
            )
        if state == "STOPPED":
            timeline = self._start_timeline(warehouse.warehouse_id, warehouse.spec)
            warehouse.progress.restart(timeline, req.now)
        return {}

    def stop(self, req: SimRequest) -> JSON:
        """POST .../stop: STOPPING, then STOPPED (a no-op when stopped)."""
        warehouse = self._warehouse(req)
        state = warehouse.progress.current(req.now).state
        if state in ("DELETING", "DELETED"):
            raise invalid_state(f"Warehouse {warehouse.warehouse_id} is {state}.")
        if state not in ("STOPPING", "STOPPED"):
            warehouse.progress.restart((_p("STOPPING", STOP_SECONDS), _p("STOPPED")), req.now)
        return {}

    def edit(self, req: SimRequest) -> JSON:
        """POST .../edit: changes settings; a running warehouse restarts to apply them."""
        warehouse = self._warehouse(req)
        state = warehouse.progress.current(req.now).state
        if state in ("DELETING", "DELETED"):
            raise invalid_state(f"Warehouse {warehouse.warehouse_id} is {state}.")
        warehouse.spec.update({k: v for k, v in req.body.items() if k != "id"})
        if state == "RUNNING":
            timeline = self._start_timeline(warehouse.warehouse_id, warehouse.spec)
            warehouse.progress.restart(timeline, req.now)
        return {}

    def delete(self, req: SimRequest) -> JSON:
        """DELETE sql/warehouses/{id}: DELETING, then DELETED (still readable)."""
        warehouse = self._warehouse(req)
        if warehouse.progress.current(req.now).state not in ("DELETING", "DELETED"):
            warehouse.progress.restart((_p("DELETING", DELETE_SECONDS), _p("DELETED")), req.now)
        return {}
