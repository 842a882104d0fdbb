"""The Libraries API (2.0): install, uninstall, cluster-status, all-cluster-statuses."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .clusters import ClustersFamily
from .errors import invalid_parameter
from .routing import JSON, Route, SimRequest, api
from .timeline import Phase, Progress, Timeline
from .world import World

__all__ = ["LIBRARY_PRESETS", "LibrariesFamily", "library_key"]


def _p(state: str, seconds: float | None = None, **fields: Any) -> Phase:
    return Phase(state, seconds, fields)


#: Named timelines of a library install, counted from when the cluster serves. Phase
#: fields understood: ``messages`` (list of strings).
LIBRARY_PRESETS: Mapping[str, Timeline] = {
    "default": (_p("PENDING", 0.1), _p("RESOLVING", 0.1), _p("INSTALLING", 0.2), _p("INSTALLED")),
    "hold": (_p("PENDING", 0.1), _p("RESOLVING", 0.1), _p("INSTALLING")),
    "failed": (
        _p("PENDING", 0.1),
        _p("RESOLVING", 0.1),
        _p(
            "FAILED",
            messages=[
                "Library installation failed for library due to user error. Error messages:\n"
                "ERROR: No matching distribution found for simulated-package==9.9"
            ],
        ),
    ),
    "skipped": (
        _p("PENDING", 0.1),
        _p(
            "SKIPPED",
            messages=["Library installation skipped: not supported on this runtime."],
        ),
    ),
}

_KINDS = ("jar", "egg", "whl", "requirements", "pypi", "maven", "cran")


def library_key(library: Mapping[str, Any]) -> str:
    """Returns a library's selector for timelines and ``finish``: ``pypi:numpy==2.0``,
    ``jar:/Volumes/x.jar``, ``maven:g:a:v``...

    Raises:
        ApiError: Not a library spec Databricks accepts.
    """
    for kind in _KINDS:
        if kind in library:
            value = library[kind]
            if isinstance(value, Mapping):
                name = value.get("package") or value.get("coordinates")
                if not name:
                    raise invalid_parameter(f"Invalid library spec: {json.dumps(library)}")
                return f"{kind}:{name}"
            return f"{kind}:{value}"
    raise invalid_parameter(f"Invalid library spec: {json.dumps(library)}")


@dataclass
class Library:
    """A library requested on a cluster."""

    spec: JSON
    key: str
    requested_at: float
    phases: Timeline
    uninstall_at: float | None = None


class LibrariesFamily:
    """Cluster libraries; they only progress while their cluster serves."""

    presets: Mapping[str, Mapping[str, Timeline]] = {"libraries": LIBRARY_PRESETS}

    def __init__(self, world: World, clusters: ClustersFamily) -> None:
        """Creates an empty family in ``world`` using the clusters of ``clusters``."""
        self._world = world
        self._clusters = clusters
        self.libraries: dict[str, dict[str, Library]] = {}

    def reset(self) -> None:
        """Forgets every library."""
        self.libraries.clear()

    def routes(self) -> list[Route]:
        """Returns the Libraries endpoints."""
        return [
            Route("POST", api("2.0", "libraries/install"), self.install),
            Route("POST", api("2.0", "libraries/uninstall"), self.uninstall),
            Route("GET", api("2.0", "libraries/cluster-status"), self.cluster_status),
            Route("GET", api("2.0", "libraries/all-cluster-statuses"), self.all_statuses),
        ]

    def finish(self, kind: str, entity_id: str, phase: Phase) -> None:
        """Moves library ``"<cluster_id>/<library key>"`` to ``phase`` now."""
        cluster_id, _, key = entity_id.partition("/")
        library = self.libraries[cluster_id][key]
        library.phases = (phase,)
        library.requested_at = self._world.now()

    def _specs(self, req: SimRequest) -> tuple[str, list[JSON]]:
        cluster_id = str(req.require("cluster_id"))
        self._clusters.cluster(cluster_id)
        libraries = req.require("libraries")
        if not isinstance(libraries, list) or not all(isinstance(x, dict) for x in libraries):
            raise invalid_parameter("libraries must be a list of library specs")
        return cluster_id, libraries

    def install(self, req: SimRequest) -> JSON:
        """libraries/install: asynchronous; PENDING until the cluster serves."""
        cluster_id, specs = self._specs(req)
        on_cluster = self.libraries.setdefault(cluster_id, {})
        for spec in specs:
            key = library_key(spec)
            existing = on_cluster.get(key)
            if existing is not None and existing.uninstall_at is None:
                continue  # installing an installed library again is a no-op
            timeline = self._world.timeline_for(
                "libraries", [("library", key), ("cluster_id", cluster_id)]
            )
            on_cluster[key] = Library(dict(spec), key, req.now, timeline)
            self._world.record_created("libraries", f"{cluster_id}/{key}", cluster_id=cluster_id)
        return {}

    def uninstall(self, req: SimRequest) -> JSON:
        """libraries/uninstall: the libraries go away at the next cluster restart."""
        cluster_id, specs = self._specs(req)
        on_cluster = self.libraries.get(cluster_id, {})
        for spec in specs:
            library = on_cluster.get(library_key(spec))
            if library is not None and library.uninstall_at is None:
                library.uninstall_at = req.now
        return {}

    def _statuses(self, cluster_id: str, now: float) -> list[JSON]:
        cluster = self._clusters.clusters.get(cluster_id)
        if cluster is None:
            return []
        since = cluster.usable_since(now)
        on_cluster = self.libraries.get(cluster_id, {})
        out: list[JSON] = []
        for key, library in list(on_cluster.items()):
            if library.uninstall_at is not None and cluster.restarted_at >= library.uninstall_at:
                # The cluster (re)started after the uninstall was asked: the library is gone.
                del on_cluster[key]
                continue
            status: JSON = {"library": library.spec, "is_library_for_all_clusters": False}
            if library.uninstall_at is not None:
                status["status"] = "UNINSTALL_ON_RESTART"
            elif since is None:
                status["status"] = "PENDING"
            else:
                start = max(library.requested_at, since)
                phase = Progress(library.phases, start).current(now)
                status["status"] = phase.state
                if phase.fields.get("messages"):
                    status["messages"] = list(phase.fields["messages"])
            out.append(status)
        return out

    def cluster_status(self, req: SimRequest) -> JSON:
        """libraries/cluster-status."""
        cluster_id = str(req.require("cluster_id"))
        self._clusters.cluster(cluster_id)
        statuses = self._statuses(cluster_id, req.now)
        out: JSON = {"cluster_id": cluster_id}
        if statuses:
            out["library_statuses"] = statuses
        return out

    def all_statuses(self, req: SimRequest) -> JSON:
        """libraries/all-cluster-statuses: every cluster that has libraries."""
        statuses = []
        for cluster_id in list(self.libraries):
            found = self._statuses(cluster_id, req.now)
            if found:
                statuses.append({"cluster_id": cluster_id, "library_statuses": found})
        return {"statuses": statuses}
