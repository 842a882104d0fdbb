"""The SQL warehouses family: create, start, stop and edit as operations.

Databricks has no idempotency token for warehouse creation. The server tags every warehouse
it creates (``tags.custom_tags`` ``lro_operation_id``) and, when an earlier create may have
reached Databricks, lists the warehouses and adopts the tagged one instead of creating again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf.message import Message

from lro_server._proto.lro.databricks.v1 import warehouses_pb2
from lro_server.core.errors import Internal
from lro_server.databricks.client import Databricks, JsonDict
from lro_server.databricks.convert import (
    OPERATION_TAG,
    carry_over,
    error_info,
    stamp_initial,
    struct,
)
from lro_server.databricks.family import Observation, Tracked
from lro_server.databricks.paths import path_id
from lro_server.databricks.warehouses_states import health, judge_warehouse
from lro_server.databricks.work import Entity, Work

API = "/api/2.0/sql/warehouses"
ACTIONS = ("create", "start", "stop", "edit")
#: States showing that an action sent before is under way (a retry must not resend it).
UNDER_WAY = {"start": {"STARTING", "RUNNING"}, "stop": {"STOPPING", "STOPPED"}}


def warehouse_url(host: str, warehouse_id: str) -> str:
    """Link to a warehouse in the workspace."""
    return f"{host}/sql/warehouses/{warehouse_id}" if warehouse_id else ""


def _tags(warehouse: Mapping[str, Any]) -> dict[str, str]:
    tags = (warehouse.get("tags") or {}).get("custom_tags") or []
    return {str(t.get("key")): str(t.get("value")) for t in tags if isinstance(t, Mapping)}


class WarehousesFamily:
    """Warehouses Create / Start / Stop / Edit."""

    name = "warehouses"

    def initial_metadata(self, work: Work) -> Message:
        """WarehouseMetadata before anything happened."""
        request = work.request
        meta = warehouses_pb2.WarehouseMetadata(
            warehouse_id=str(request.get("id") or ""),
            name=str(request.get("name") or ""),
            action=work.action.upper(),
        )
        return stamp_initial(meta, work)

    async def start(
        self, dbx: Databricks, work: Work, token: str, *, retry: bool = False
    ) -> Entity:
        """Send the action (after looking for an earlier attempt when ``retry``)."""
        action = work.action
        if action not in ACTIONS:
            raise Internal(f"unknown warehouses action {action!r}")
        body = dict(work.request)
        if action == "create":
            return await self._create(dbx, body, token, retry=retry)
        warehouse_id = path_id(body.pop("id"), "id")
        before = await self._get(dbx, warehouse_id) if retry or action == "edit" else {}
        goal = "STOPPED" if action == "stop" else "RUNNING"
        if action == "edit" and before.get("state") in ("STOPPED", "STOPPING"):
            goal = "STOPPED"
        entity = Entity(warehouse_id=warehouse_id, goal=goal)
        if retry and before.get("state") in UNDER_WAY.get(action, ()):
            return entity
        path = f"{API}/{warehouse_id}/{action}"
        await dbx.call("POST", path, body=body, idempotent=action != "edit")
        return entity

    async def _create(self, dbx: Databricks, body: JsonDict, token: str, *, retry: bool) -> Entity:
        if retry:
            listing = await dbx.call("GET", API)
            for warehouse in listing.get("warehouses") or []:
                if _tags(warehouse).get(OPERATION_TAG) == token:
                    return Entity(warehouse_id=str(warehouse["id"]), goal="RUNNING")
        tags = dict(body.get("tags") or {})
        custom = [t for t in tags.get("custom_tags") or [] if t.get("key") != OPERATION_TAG]
        tags["custom_tags"] = [*custom, {"key": OPERATION_TAG, "value": token}]
        body["tags"] = tags
        answer = await dbx.call("POST", API, body=body, idempotent=False)
        return Entity(warehouse_id=str(answer["id"]), goal="RUNNING")

    async def _get(self, dbx: Databricks, warehouse_id: str) -> JsonDict:
        return await dbx.call("GET", f"{API}/{warehouse_id}")

    async def observe(self, dbx: Databricks, work: Work, metadata: Message | None) -> Observation:
        """GET the warehouse and judge it."""
        warehouse = await self._get(dbx, work.ids.warehouse_id)
        return self.judge(dbx.host, work, warehouse, metadata)

    async def observe_many(
        self, dbx: Databricks, tracked: Sequence[Tracked]
    ) -> list[Observation | None]:
        """One warehouses list for every tracked warehouse (deleted ones are read alone)."""
        listing = await dbx.call("GET", API)
        seen = {str(w.get("id")): w for w in listing.get("warehouses") or []}
        out: list[Observation | None] = []
        for work, metadata in tracked:
            found = seen.get(work.ids.warehouse_id)
            out.append(None if found is None else self.judge(dbx.host, work, found, metadata))
        return out

    def judge(
        self,
        host: str,
        work: Work,
        warehouse: Mapping[str, Any],
        metadata: Message | None,
    ) -> Observation:
        """Observation of a warehouse body."""
        entity = work.ids
        meta = carry_over(warehouses_pb2.WarehouseMetadata, metadata, work)
        info = health(warehouse)
        meta.warehouse_id = str(warehouse.get("id") or entity.warehouse_id)
        meta.name = str(warehouse.get("name") or meta.name)
        meta.state = str(warehouse.get("state") or "")
        meta.health_status = str(info.get("status") or "")
        meta.health_summary = str(info.get("summary") or "")
        meta.num_clusters = int(warehouse.get("num_clusters") or 0)
        meta.warehouse_url = warehouse_url(host, meta.warehouse_id)
        goal = entity.goal or "RUNNING"
        if work.cancel_sent and goal == "RUNNING":
            goal = "CANCELLED"
        verdict = judge_warehouse(warehouse, goal)
        state = meta.state or "PENDING"
        if not verdict.done:
            return Observation(state=state, metadata=meta, verdict=verdict)
        if verdict.succeeded:
            response = warehouses_pb2.Warehouse(
                id=meta.warehouse_id,
                name=meta.name,
                state=meta.state,
                health_status=meta.health_status,
                health_summary=meta.health_summary,
                jdbc_url=str(warehouse.get("jdbc_url") or ""),
                warehouse_url=meta.warehouse_url,
                num_clusters=meta.num_clusters,
                details=struct(warehouse),
            )
            return Observation(state=state, metadata=meta, verdict=verdict, response=response)
        reason = info.get("failure_reason") or {}
        detail = error_info(
            "DATABRICKS_WAREHOUSE_" + (str(reason.get("code") or "") or meta.state or "FAILED"),
            warehouse_id=meta.warehouse_id,
            warehouse_url=meta.warehouse_url,
            state=meta.state,
            health_status=meta.health_status,
        )
        return Observation(state=state, metadata=meta, verdict=verdict, details=(detail,))

    async def cancel(self, dbx: Databricks, work: Work) -> None:
        """Stop the warehouse; a Stop (or an Edit of a stopped one) cannot be undone."""
        entity = work.ids
        if entity.goal != "RUNNING":
            return
        path = f"{API}/{entity.warehouse_id}/stop"
        await dbx.call("POST", path, body={}, idempotent=True)
