"""The libraries family: install and uninstall cluster libraries as operations.

Installing an installed library again is a no-op on Databricks, so starts are simply
repeated after an ambiguous failure. Databricks has no way to cancel an installation:
CancelOperation leaves these operations unchanged and they end as Databricks ends them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf.message import Message

from lro_server._proto.lro.databricks.v1 import libraries_pb2
from lro_server.core.errors import Internal
from lro_server.databricks.client import Databricks
from lro_server.databricks.convert import canonical, carry_over, error_info, stamp_initial, struct
from lro_server.databricks.family import Observation, Tracked
from lro_server.databricks.libraries_states import judge_libraries
from lro_server.databricks.work import Entity, Work

_log = logging.getLogger(__name__)

API = "/api/2.0/libraries"


def libraries_url(host: str, cluster_id: str) -> str:
    """Link to a cluster's libraries in the workspace."""
    return f"{host}/#setting/clusters/{cluster_id}/libraries" if cluster_id else ""


def label(library: Mapping[str, Any]) -> str:
    """A short name of a library spec, e.g. ``pypi:numpy==2.0`` or ``whl:/Volumes/a.whl``."""
    for kind, spec in library.items():
        if isinstance(spec, Mapping):
            return f"{kind}:{spec.get('package') or spec.get('coordinates') or canonical(spec)}"
        return f"{kind}:{spec}"
    return "library"


class LibrariesFamily:
    """Libraries Install / Uninstall."""

    name = "libraries"

    def initial_metadata(self, work: Work) -> Message:
        """LibrariesMetadata listing the named libraries, status unknown."""
        request = work.request
        meta = libraries_pb2.LibrariesMetadata(
            cluster_id=str(request.get("cluster_id") or ""), state="PENDING"
        )
        for library in request.get("libraries") or []:
            meta.libraries.add(library=struct(library))
        return stamp_initial(meta, work)

    async def start(
        self, dbx: Databricks, work: Work, token: str, *, retry: bool = False
    ) -> Entity:
        """POST libraries/install or /uninstall (both harmless to repeat)."""
        action = work.action
        if action not in ("install", "uninstall"):
            raise Internal(f"unknown libraries action {action!r}")
        body = dict(work.request)
        await dbx.call("POST", f"{API}/{action}", body=body, idempotent=True)
        return Entity(cluster_id=str(body["cluster_id"]), goal=action)

    async def observe(self, dbx: Databricks, work: Work, metadata: Message | None) -> Observation:
        """GET libraries/cluster-status and judge the named libraries."""
        cluster_id = work.ids.cluster_id
        body = await dbx.call("GET", f"{API}/cluster-status", query={"cluster_id": cluster_id})
        return self.judge(dbx.host, work, body.get("library_statuses") or [], metadata)

    async def observe_many(
        self, dbx: Databricks, tracked: Sequence[Tracked]
    ) -> list[Observation | None]:
        """One libraries/all-cluster-statuses call for every tracked cluster.

        A cluster missing from the answer has no libraries at all.
        """
        body = await dbx.call("GET", f"{API}/all-cluster-statuses")
        by_cluster = {
            str(s.get("cluster_id")): s.get("library_statuses") or []
            for s in body.get("statuses") or []
        }
        return [
            self.judge(dbx.host, work, by_cluster.get(work.ids.cluster_id, []), metadata)
            for work, metadata in tracked
        ]

    def judge(
        self,
        host: str,
        work: Work,
        statuses: Sequence[Mapping[str, Any]],
        metadata: Message | None,
    ) -> Observation:
        """Observation of a cluster's library statuses."""
        entity = work.ids
        meta = carry_over(libraries_pb2.LibrariesMetadata, metadata, work)
        meta.cluster_id = entity.cluster_id
        meta.cluster_url = libraries_url(host, meta.cluster_id)
        on_cluster = {canonical(s.get("library")): s for s in statuses}
        rows: list[tuple[str, str, Sequence[str]]] = []
        del meta.libraries[:]
        for library in work.request.get("libraries") or []:
            status = on_cluster.get(canonical(library)) or {}
            messages = [str(m) for m in status.get("messages") or []]
            state = str(status.get("status") or "")
            meta.libraries.add(library=struct(library), status=state, messages=messages)
            rows.append((label(library), state, messages))
        verdict, meta.progress_percent = judge_libraries(entity.goal, rows)
        if not verdict.done:
            installing = any(s in ("RESOLVING", "INSTALLING") for _, s, _ in rows)
            meta.state = "INSTALLING" if installing else "PENDING"
            return Observation(state=meta.state, metadata=meta, verdict=verdict)
        meta.state = "DONE" if verdict.succeeded else "FAILED"
        if verdict.succeeded:
            response = libraries_pb2.LibrariesResult(
                cluster_id=meta.cluster_id, libraries=meta.libraries
            )
            return Observation(state=meta.state, metadata=meta, verdict=verdict, response=response)
        failed = [name for name, s, _ in rows if s in ("FAILED", "UNINSTALL_ON_RESTART")]
        info = error_info(
            "DATABRICKS_LIBRARY_FAILED",
            cluster_id=meta.cluster_id,
            cluster_url=meta.cluster_url,
            libraries=", ".join(failed),
        )
        return Observation(state=meta.state, metadata=meta, verdict=verdict, details=(info,))

    async def cancel(self, dbx: Databricks, work: Work) -> None:
        """Nothing to do: Databricks cannot cancel a library (un)installation."""
        _log.info(
            "cluster %s: library operations cannot be cancelled; it goes on",
            work.ids.cluster_id,
        )
