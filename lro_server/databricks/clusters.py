"""The clusters family: create, start, restart, resize, edit and delete as operations.

Databricks has no idempotency token for clusters/create. The server tags every cluster it
creates with ``custom_tags.lro_operation_id`` and, when an earlier create may have reached
Databricks (a dropped connection, a crash before the id was stored), lists the clusters and
adopts the tagged one instead of creating a second. Other actions re-read the cluster first
on a retry and do not repeat an action already under way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from google.protobuf.message import Message

from lro_server._proto.lro.databricks.v1 import clusters_pb2
from lro_server.core.errors import Internal
from lro_server.databricks.client import Databricks, JsonDict
from lro_server.databricks.clusters_states import judge_cluster
from lro_server.databricks.convert import (
    OPERATION_TAG,
    carry_over,
    error_info,
    millis,
    stamp_initial,
    struct,
)
from lro_server.databricks.family import Observation, Tracked
from lro_server.databricks.work import Entity, Work

API = "/api/2.1/clusters"
#: Action → REST path that performs it.
ACTION_PATHS = {
    "create": f"{API}/create",
    "start": f"{API}/start",
    "restart": f"{API}/restart",
    "resize": f"{API}/resize",
    "edit": f"{API}/edit",
    "delete": f"{API}/delete",
}
#: States showing that an action sent before is under way (a retry must not resend it).
UNDER_WAY = {
    "start": {"PENDING", "RUNNING"},
    "restart": {"RESTARTING"},
    "resize": {"RESIZING"},
    "edit": {"RESTARTING"},
    "delete": {"TERMINATING", "TERMINATED"},
}
#: Most list pages read per batch, as a share of the operations it serves.
PAGES_PER_OPERATION = 0.25


def cluster_url(host: str, cluster_id: str) -> str:
    """Link to a cluster in the workspace."""
    return f"{host}/#setting/clusters/{cluster_id}/configuration" if cluster_id else ""


def _reason(cluster: Mapping[str, Any]) -> clusters_pb2.TerminationReason:
    reason = cluster.get("termination_reason") or {}
    return clusters_pb2.TerminationReason(
        code=str(reason.get("code") or ""),
        type=str(reason.get("type") or ""),
        parameters={str(k): str(v) for k, v in (reason.get("parameters") or {}).items()},
    )


class ClustersFamily:
    """Clusters Create / Start / Restart / Resize / Edit / Delete."""

    name = "clusters"

    def initial_metadata(self, work: Work) -> Message:
        """ClusterMetadata before anything happened."""
        request = work.request
        meta = clusters_pb2.ClusterMetadata(
            cluster_id=str(request.get("cluster_id") or ""),
            cluster_name=str(request.get("cluster_name") or ""),
            action=work.action.upper(),
        )
        return stamp_initial(meta, work)

    async def start(
        self, dbx: Databricks, work: Work, token: str, *, retry: bool = False
    ) -> Entity:
        """Send the action (after looking for an earlier attempt when ``retry``)."""
        action = work.action
        path = ACTION_PATHS.get(action)
        if path is None:
            raise Internal(f"unknown clusters action {action!r}")
        body = dict(work.request)
        if action == "create":
            return await self._create(dbx, body, token, retry=retry)
        cluster_id = str(body["cluster_id"])
        before = await self._get(dbx, cluster_id) if retry or action == "edit" else {}
        goal = "RUNNING"
        if action == "delete" or (action == "edit" and before.get("state") == "TERMINATED"):
            goal = "TERMINATED"
        entity = Entity(cluster_id=cluster_id, goal=goal)
        if retry and before.get("state") in UNDER_WAY[action]:
            return entity  # the earlier attempt went through
        await dbx.call("POST", path, body=body, idempotent=action in ("resize", "delete"))
        return entity

    async def _create(self, dbx: Databricks, body: JsonDict, token: str, *, retry: bool) -> Entity:
        if retry:
            found = await self._find_tagged(dbx, token)
            if found:
                return Entity(cluster_id=found, goal="RUNNING")
        body["custom_tags"] = {**(body.get("custom_tags") or {}), OPERATION_TAG: token}
        answer = await dbx.call("POST", ACTION_PATHS["create"], body=body, idempotent=False)
        return Entity(cluster_id=str(answer["cluster_id"]), goal="RUNNING")

    async def _find_tagged(self, dbx: Databricks, token: str) -> str:
        async for cluster in self._list(dbx, max_pages=100):
            if (cluster.get("custom_tags") or {}).get(OPERATION_TAG) == token:
                return str(cluster["cluster_id"])
        return ""

    async def _list(self, dbx: Databricks, *, max_pages: int) -> AsyncIterator[JsonDict]:
        token = ""
        for _ in range(max_pages):
            query: JsonDict = {"page_size": 100}
            if token:
                query["page_token"] = token
            page = await dbx.call("GET", f"{API}/list", query=query)
            for cluster in page.get("clusters") or []:
                yield cluster
            token = str(page.get("next_page_token") or "")
            if not token:
                return

    async def _get(self, dbx: Databricks, cluster_id: str) -> JsonDict:
        return await dbx.call("GET", f"{API}/get", query={"cluster_id": cluster_id})

    async def observe(self, dbx: Databricks, work: Work, metadata: Message | None) -> Observation:
        """GET clusters/get and judge the cluster."""
        cluster = await self._get(dbx, work.ids.cluster_id)
        return self.judge(dbx.host, work, cluster, metadata)

    async def observe_many(
        self, dbx: Databricks, tracked: Sequence[Tracked]
    ) -> list[Observation | None]:
        """One clusters/list walk for every tracked cluster."""
        wanted = {work.ids.cluster_id for work, _ in tracked}
        seen: dict[str, JsonDict] = {}
        pages = max(1, int(len(tracked) * PAGES_PER_OPERATION))
        async for cluster in self._list(dbx, max_pages=pages):
            cluster_id = str(cluster.get("cluster_id") or "")
            if cluster_id in wanted:
                seen[cluster_id] = cluster
                if len(seen) == len(wanted):
                    break
        out: list[Observation | None] = []
        for work, metadata in tracked:
            found = seen.get(work.ids.cluster_id)
            out.append(None if found is None else self.judge(dbx.host, work, found, metadata))
        return out

    def judge(
        self,
        host: str,
        work: Work,
        cluster: Mapping[str, Any],
        metadata: Message | None,
    ) -> Observation:
        """Observation of a clusters/get (or list item) body."""
        entity = work.ids
        meta = carry_over(clusters_pb2.ClusterMetadata, metadata, work)
        meta.cluster_id = str(cluster.get("cluster_id") or entity.cluster_id)
        meta.cluster_name = str(cluster.get("cluster_name") or meta.cluster_name)
        meta.state = str(cluster.get("state") or "")
        meta.state_message = str(cluster.get("state_message") or "")
        meta.num_workers = int(cluster.get("num_workers") or 0)
        meta.cluster_url = cluster_url(host, meta.cluster_id)
        meta.termination_reason.CopyFrom(_reason(cluster))
        goal = entity.goal or "RUNNING"
        if work.cancel_sent and goal == "RUNNING":
            goal = "CANCELLED"
        verdict = judge_cluster(cluster, goal)
        state = meta.state or "PENDING"
        if not verdict.done:
            return Observation(state=state, metadata=meta, verdict=verdict)
        end = millis(cluster.get("terminated_time")) if meta.state == "TERMINATED" else None
        if end is not None:
            meta.end_time.CopyFrom(end)
        if verdict.succeeded:
            response = clusters_pb2.Cluster(
                cluster_id=meta.cluster_id,
                cluster_name=meta.cluster_name,
                state=meta.state,
                state_message=meta.state_message,
                num_workers=meta.num_workers,
                spark_version=str(cluster.get("spark_version") or ""),
                cluster_url=meta.cluster_url,
                termination_reason=meta.termination_reason,
                details=struct(cluster),
            )
            return Observation(state=state, metadata=meta, verdict=verdict, response=response)
        info = error_info(
            "DATABRICKS_CLUSTER_" + (meta.termination_reason.code or meta.state or "FAILED"),
            cluster_id=meta.cluster_id,
            cluster_url=meta.cluster_url,
            state=meta.state,
            termination_code=meta.termination_reason.code,
            termination_type=meta.termination_reason.type,
        )
        return Observation(state=state, metadata=meta, verdict=verdict, details=(info,))

    async def cancel(self, dbx: Databricks, work: Work) -> None:
        """Terminate the cluster (clusters/delete); a Delete or a stopped Edit cannot be undone."""
        entity = work.ids
        if entity.goal != "RUNNING":
            return
        await dbx.call(
            "POST",
            ACTION_PATHS["delete"],
            body={"cluster_id": entity.cluster_id},
            idempotent=True,
        )
