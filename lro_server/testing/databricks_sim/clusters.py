"""The Clusters API (2.0/2.1): create, start, restart, resize, edit, delete, get, list."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import invalid_parameter, invalid_state
from .paging import page
from .routing import JSON, Route, SimRequest, api
from .timeline import Phase, Progress, Timeline
from .world import World

__all__ = ["CLUSTER_PRESETS", "Cluster", "ClustersFamily"]

_VERSIONS = "2.0 2.1"
_USER = "simulator@example.com"


def _p(state: str, seconds: float | None = None, **fields: Any) -> Phase:
    return Phase(state, seconds, fields)


_LAUNCH_FAILURE = {
    "code": "CLOUD_PROVIDER_LAUNCH_FAILURE",
    "type": "CLOUD_FAILURE",
    "parameters": {
        "databricks_error_message": "The cloud provider has no capacity for i3.xlarge.",
        "aws_api_error_code": "InsufficientInstanceCapacity",
    },
}

#: Named timelines for starting clusters (create, start). Phase fields understood:
#: ``state_message``, ``termination_reason`` (``{code, type, parameters}``).
CLUSTER_PRESETS: Mapping[str, Timeline] = {
    "default": (_p("PENDING", 0.3, state_message="Finding instances for new nodes"), _p("RUNNING")),
    "hold": (_p("PENDING", state_message="Finding instances for new nodes"),),
    "error": (
        _p("PENDING", 0.3, state_message="Finding instances for new nodes"),
        _p("ERROR", state_message="Spark failed to start: the driver did not respond."),
    ),
    "terminated_on_start": (
        _p("PENDING", 0.3, state_message="Finding instances for new nodes"),
        _p(
            "TERMINATING",
            0.1,
            state_message="The cloud provider has no capacity for i3.xlarge.",
            termination_reason=_LAUNCH_FAILURE,
        ),
        _p(
            "TERMINATED",
            state_message="The cloud provider has no capacity for i3.xlarge.",
            termination_reason=_LAUNCH_FAILURE,
        ),
    ),
}

#: Seconds of the fixed transitions (not configurable: only starts take timelines).
RESTART_SECONDS = 0.2
RESIZE_SECONDS = 0.1
TERMINATE_SECONDS = 0.1


def _user_termination() -> Timeline:
    reason = {"code": "USER_REQUEST", "type": "SUCCESS", "parameters": {"username": _USER}}
    return (
        _p(
            "TERMINATING", TERMINATE_SECONDS, state_message="Terminating", termination_reason=reason
        ),
        _p("TERMINATED", state_message="Terminated by user", termination_reason=reason),
    )


def _restart() -> Timeline:
    return (_p("RESTARTING", RESTART_SECONDS, state_message="Restarting Spark"), _p("RUNNING"))


@dataclass
class Cluster:
    """A cluster and where it is on its timeline."""

    cluster_id: str
    spec: JSON
    progress: Progress
    created_at: float
    started_at: float
    restarted_at: float = 0.0
    up_since: float | None = None

    def state(self, now: float) -> str:
        """Returns the cluster's state at ``now``."""
        return self.progress.current(now).state

    def usable_since(self, now: float) -> float | None:
        """Returns since when the cluster has been serving (RUNNING or RESIZING), if it is."""
        phase, began = self.progress.position(now)
        if phase.state not in ("RUNNING", "RESIZING"):
            return None
        return self.up_since if self.up_since is not None else began

    def transition(self, phases: Timeline, now: float, *, keep_up: bool = False) -> None:
        """Starts new phases; ``keep_up`` keeps the serving period (a resize)."""
        self.up_since = self.usable_since(now) if keep_up else None
        self.progress.restart(phases, now)


def _cluster_id(n: int) -> str:
    return f"0101-{n:06d}-sim{n % 10000:04d}"


class ClustersFamily:
    """Clusters with their state machine and Databricks' INVALID_STATE checks."""

    presets: Mapping[str, Mapping[str, Timeline]] = {"clusters": CLUSTER_PRESETS}

    def __init__(self, world: World) -> None:
        """Creates an empty family in ``world``."""
        self._world = world
        self.clusters: dict[str, Cluster] = {}

    def reset(self) -> None:
        """Forgets every cluster."""
        self.clusters.clear()

    def routes(self) -> list[Route]:
        """Returns the Clusters endpoints."""
        table = [
            ("POST", "clusters/create", self.create),
            ("POST", "clusters/start", self.start),
            ("POST", "clusters/restart", self.restart),
            ("POST", "clusters/resize", self.resize),
            ("POST", "clusters/edit", self.edit),
            ("POST", "clusters/delete", self.delete),
            ("POST", "clusters/permanent-delete", self.permanent_delete),
            ("GET", "clusters/get", self.get),
            ("GET", "clusters/list", self.list_clusters),
        ]
        return [Route(method, api(_VERSIONS, rest), fn) for method, rest, fn in table]

    def finish(self, kind: str, entity_id: str, phase: Phase) -> None:
        """Moves cluster ``entity_id`` to ``phase`` now."""
        self.clusters[entity_id].transition((phase,), self._world.now())

    def cluster(self, cluster_id: str) -> Cluster:
        """Returns a cluster or raises what Databricks answers for an unknown id."""
        found = self.clusters.get(cluster_id)
        if found is None:
            # The SDK turns this on clusters/get into ResourceDoesNotExist (its override).
            raise invalid_parameter(f"Cluster {cluster_id} does not exist")
        return found

    def _timeline(self, cluster_id: str, spec: JSON) -> Timeline:
        return self._world.timeline_for(
            "clusters", [("cluster_id", cluster_id), ("cluster_name", spec.get("cluster_name"))]
        )

    def create(self, req: SimRequest) -> JSON:
        """clusters/create: PENDING, then RUNNING (or the configured failure)."""
        if not req.get("spark_version"):
            raise invalid_parameter("Missing required field: spark_version")
        if req.get("num_workers") is None and req.get("autoscale") is None:
            raise invalid_parameter("Missing required field: num_workers or autoscale")
        spec = {k: v for k, v in req.body.items() if k != "apply_policy_default_values"}
        cluster_id = _cluster_id(self._world.new_id())
        progress = Progress(self._timeline(cluster_id, spec), req.now)
        cluster = Cluster(cluster_id, spec, progress, req.now, req.now, restarted_at=req.now)
        self.clusters[cluster_id] = cluster
        self._world.record_created("clusters", cluster_id, cluster_name=spec.get("cluster_name"))
        return {"cluster_id": cluster_id}

    def _expect(self, cluster: Cluster, now: float, *allowed: str) -> None:
        state = cluster.state(now)
        if state not in allowed:
            raise invalid_state(
                f"Cluster {cluster.cluster_id} is in unexpected state {state.title()}."
            )

    def start(self, req: SimRequest) -> JSON:
        """clusters/start: only from TERMINATED."""
        cluster = self.cluster(req.require("cluster_id"))
        self._expect(cluster, req.now, "TERMINATED")
        cluster.started_at = cluster.restarted_at = req.now
        cluster.transition(self._timeline(cluster.cluster_id, cluster.spec), req.now)
        return {}

    def restart(self, req: SimRequest) -> JSON:
        """clusters/restart: RUNNING → RESTARTING → RUNNING."""
        cluster = self.cluster(req.require("cluster_id"))
        self._expect(cluster, req.now, "RUNNING")
        cluster.restarted_at = req.now
        cluster.transition(_restart(), req.now)
        return {}

    def resize(self, req: SimRequest) -> JSON:
        """clusters/resize: RUNNING → RESIZING → RUNNING with the new size."""
        cluster = self.cluster(req.require("cluster_id"))
        num_workers, autoscale = req.get("num_workers"), req.get("autoscale")
        if num_workers is None and autoscale is None:
            raise invalid_parameter("Either num_workers or autoscale must be set")
        self._expect(cluster, req.now, "RUNNING")
        if num_workers is not None:
            cluster.spec["num_workers"] = int(num_workers)
            cluster.spec.pop("autoscale", None)
        else:
            cluster.spec["autoscale"] = autoscale
            cluster.spec.pop("num_workers", None)
        cluster.transition(
            (_p("RESIZING", RESIZE_SECONDS, state_message="Resizing"), _p("RUNNING")),
            req.now,
            keep_up=True,
        )
        return {}

    def edit(self, req: SimRequest) -> JSON:
        """clusters/edit: a RUNNING cluster restarts, a TERMINATED one just changes."""
        cluster = self.cluster(req.require("cluster_id"))
        if not req.get("spark_version"):
            raise invalid_parameter("Missing required field: spark_version")
        self._expect(cluster, req.now, "RUNNING", "TERMINATED")
        cluster.spec = {k: v for k, v in req.body.items() if k != "cluster_id"}
        if cluster.state(req.now) == "RUNNING":
            cluster.restarted_at = req.now
            cluster.transition(_restart(), req.now)
        return {}

    def delete(self, req: SimRequest) -> JSON:
        """clusters/delete (terminate): TERMINATING → TERMINATED with USER_REQUEST."""
        cluster = self.cluster(req.require("cluster_id"))
        if cluster.state(req.now) not in ("TERMINATING", "TERMINATED"):
            cluster.transition(_user_termination(), req.now)
        return {}

    def permanent_delete(self, req: SimRequest) -> JSON:
        """clusters/permanent-delete: the cluster is gone at once."""
        cluster = self.cluster(req.require("cluster_id"))
        del self.clusters[cluster.cluster_id]
        return {}

    def render(self, cluster: Cluster, now: float) -> JSON:
        """Returns the clusters/get JSON of ``cluster`` at ``now``."""
        phase, began = cluster.progress.position(now)
        epoch = self._world.epoch_ms
        out: JSON = {
            **cluster.spec,
            "cluster_id": cluster.cluster_id,
            "cluster_name": cluster.spec.get("cluster_name", ""),
            "state": phase.state,
            "state_message": str(phase.fields.get("state_message", "")),
            "creator_user_name": _USER,
            "cluster_source": cluster.spec.get("cluster_source", "API"),
            "start_time": epoch(cluster.started_at),
            "last_restarted_time": epoch(cluster.restarted_at),
            "default_tags": {"Vendor": "Databricks", "ClusterId": cluster.cluster_id},
        }
        if phase.state in ("TERMINATED", "ERROR"):
            out["terminated_time"] = epoch(began)
        reason = phase.fields.get("termination_reason")
        if reason is not None and phase.state in ("TERMINATING", "TERMINATED", "ERROR"):
            out["termination_reason"] = reason
        if phase.state in ("RUNNING", "RESIZING"):
            out["spark_context_id"] = int(cluster.cluster_id.split("-")[1]) * 7919
        return out

    def get(self, req: SimRequest) -> JSON:
        """clusters/get."""
        return self.render(self.cluster(req.require("cluster_id")), req.now)

    def list_clusters(self, req: SimRequest) -> JSON:
        """clusters/list: filter_by.cluster_states / cluster_sources / is_pinned, paging."""
        states = set(req.getall("filter_by.cluster_states"))
        sources = set(req.getall("filter_by.cluster_sources"))
        pinned = req.opt_str("filter_by.is_pinned")
        policy = req.opt_str("filter_by.policy_id")
        rendered = [self.render(c, req.now) for c in self.clusters.values()]
        selected = [
            c
            for c in rendered
            if (not states or c["state"] in states)
            and (not sources or c["cluster_source"] in sources)
            and (pinned is None or pinned.lower() == "false")
            and (policy is None or c.get("policy_id") == policy)
        ]
        chunk, extra = page(
            selected, req, default_limit=100, max_limit=100, limit_param="page_size"
        )
        extra.pop("has_more", None)
        out: JSON = {**extra}
        if chunk:
            out["clusters"] = list(chunk)
        return out
