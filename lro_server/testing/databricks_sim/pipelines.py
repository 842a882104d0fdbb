"""Delta Live Tables pipelines (2.0): create, get, list, start update, get update, stop."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError, conflict, not_found
from .paging import page
from .routing import JSON, Route, SimRequest, api
from .timeline import Phase, Progress, Timeline
from .world import World

__all__ = ["UPDATE_PRESETS", "PipelinesFamily"]


def _p(state: str, seconds: float | None = None, **fields: Any) -> Phase:
    return Phase(state, seconds, fields)


_START = (
    _p("QUEUED", 0.05),
    _p("CREATED", 0.05),
    _p("WAITING_FOR_RESOURCES", 0.1),
    _p("INITIALIZING", 0.1),
    _p("SETTING_UP_TABLES", 0.1),
    _p("RUNNING", 0.2),
)

#: Named timelines of pipeline updates. Phase fields understood: ``error_message`` and
#: ``error_class`` (the cause, shown as the exception of the pipeline's ERROR event, whose
#: own message is Databricks' generic "Update ... is FAILED.", as in a workspace).
UPDATE_PRESETS: Mapping[str, Timeline] = {
    "default": (*_START, _p("COMPLETED")),
    "hold": (_p("QUEUED", 0.05), _p("RUNNING")),
    "failed": (
        *_START,
        _p(
            "FAILED",
            error_message="Table or view not found: raw.sales",
            error_class="org.apache.spark.sql.AnalysisException",
        ),
    ),
    "canceled": (*_START[:3], _p("CANCELED")),
}

_ENDED = frozenset({"COMPLETED", "FAILED", "CANCELED"})
#: The pipeline's state while its latest update is in each state.
_PIPELINE_STATE = {
    "QUEUED": "STARTING",
    "CREATED": "STARTING",
    "WAITING_FOR_RESOURCES": "STARTING",
    "INITIALIZING": "RUNNING",
    "RESETTING": "RESETTING",
    "SETTING_UP_TABLES": "RUNNING",
    "RUNNING": "RUNNING",
    "STOPPING": "STOPPING",
    "COMPLETED": "IDLE",
    "CANCELED": "IDLE",
    "FAILED": "FAILED",
}
STOP_SECONDS = 0.1


@dataclass
class Update:
    """One pipeline update."""

    update_id: str
    body: JSON
    progress: Progress
    created_at: float


@dataclass
class Pipeline:
    """A pipeline and its updates, newest last."""

    pipeline_id: str
    spec: JSON
    created_at: float
    updates: list[Update] = field(default_factory=list)

    def active(self, now: float) -> Update | None:
        """Returns the update that has not ended, if any."""
        for update in self.updates:
            if update.progress.current(now).state not in _ENDED:
                return update
        return None


def _missing(pipeline_id: str) -> ApiError:
    return not_found(f"The specified pipeline {pipeline_id} was not found.")


class PipelinesFamily:
    """Pipelines with one update at a time, like Databricks."""

    presets: Mapping[str, Mapping[str, Timeline]] = {"updates": UPDATE_PRESETS}

    def __init__(self, world: World) -> None:
        """Creates an empty family in ``world``."""
        self._world = world
        self.pipelines: dict[str, Pipeline] = {}

    def reset(self) -> None:
        """Forgets every pipeline."""
        self.pipelines.clear()

    def routes(self) -> list[Route]:
        """Returns the Pipelines endpoints."""
        one = "pipelines/{pipeline_id}"
        return [
            Route("POST", api("2.0", "pipelines"), self.create),
            Route("GET", api("2.0", "pipelines"), self.list_pipelines),
            Route("GET", api("2.0", one), self.get),
            Route("DELETE", api("2.0", one), self.delete),
            Route("POST", api("2.0", f"{one}/updates"), self.start_update),
            Route("GET", api("2.0", f"{one}/updates"), self.list_updates),
            Route("GET", api("2.0", f"{one}/updates/{{update_id}}"), self.get_update),
            Route("POST", api("2.0", f"{one}/stop"), self.stop),
            Route("GET", api("2.0", f"{one}/events"), self.events),
        ]

    def finish(self, kind: str, entity_id: str, phase: Phase) -> None:
        """Moves update ``"<pipeline_id>/<update_id>"`` (or a bare update id) to ``phase``."""
        _, _, update_id = entity_id.rpartition("/")
        for pipeline in self.pipelines.values():
            for update in pipeline.updates:
                if update.update_id == update_id:
                    update.progress.restart((phase,), self._world.now())
                    return
        raise KeyError(entity_id)

    def _pipeline(self, req: SimRequest) -> Pipeline:
        pipeline_id = req.params["pipeline_id"]
        pipeline = self.pipelines.get(pipeline_id)
        if pipeline is None:
            raise _missing(pipeline_id)
        return pipeline

    def create(self, req: SimRequest) -> JSON:
        """POST pipelines: answers ``{"pipeline_id", "effective_settings"}``."""
        spec = {k: v for k, v in req.body.items() if k not in ("dry_run", "allow_duplicate_names")}
        name = spec.get("name")
        if name and not req.opt_bool("allow_duplicate_names"):
            for other in self.pipelines.values():
                if other.spec.get("name") == name:
                    raise ApiError(
                        400,
                        "RESOURCE_CONFLICT",
                        f"Pipeline name '{name}' already exists (pipeline {other.pipeline_id}).",
                    )
        pipeline_id = str(uuid.UUID(int=self._world.new_id()))
        spec["id"] = pipeline_id
        self.pipelines[pipeline_id] = Pipeline(pipeline_id, spec, req.now)
        self._world.record_created("pipelines", pipeline_id, name=name)
        return {"pipeline_id": pipeline_id, "effective_settings": spec}

    def _render_update(self, pipeline: Pipeline, update: Update, now: float) -> JSON:
        return {
            "pipeline_id": pipeline.pipeline_id,
            "update_id": update.update_id,
            "state": update.progress.current(now).state,
            "cause": update.body.get("cause", "API_CALL"),
            "creation_time": self._world.epoch_ms(update.created_at),
            "full_refresh": bool(update.body.get("full_refresh", False)),
            "validate_only": bool(update.body.get("validate_only", False)),
            **{k: update.body[k] for k in ("refresh_selection",) if k in update.body},
        }

    def _state(self, pipeline: Pipeline, now: float) -> str:
        if not pipeline.updates:
            return "IDLE"
        return _PIPELINE_STATE.get(pipeline.updates[-1].progress.current(now).state, "RUNNING")

    def _render(self, pipeline: Pipeline, now: float, full: bool) -> JSON:
        latest = [
            {
                "update_id": u.update_id,
                "state": u.progress.current(now).state,
                "creation_time": str(self._world.epoch_ms(u.created_at)),
            }
            for u in reversed(pipeline.updates[-5:])
        ]
        out: JSON = {
            "pipeline_id": pipeline.pipeline_id,
            "name": pipeline.spec.get("name", ""),
            "state": self._state(pipeline, now),
            "creator_user_name": "simulator@example.com",
            "run_as_user_name": "simulator@example.com",
            "latest_updates": latest,
        }
        if full:
            failed = bool(latest) and latest[0]["state"] == "FAILED"
            out.update(
                spec=pipeline.spec,
                health="UNHEALTHY" if failed else "HEALTHY",
                last_modified=self._world.epoch_ms(pipeline.created_at),
            )
        return out

    def get(self, req: SimRequest) -> JSON:
        """GET pipelines/{id}."""
        return self._render(self._pipeline(req), req.now, full=True)

    def delete(self, req: SimRequest) -> JSON:
        """DELETE pipelines/{id}."""
        del self.pipelines[self._pipeline(req).pipeline_id]
        return {}

    def list_pipelines(self, req: SimRequest) -> JSON:
        """GET pipelines: ``filter`` supports ``name LIKE '...'`` and ``id IN (...)``."""
        selected = [p for p in self.pipelines.values() if _matches(p, req.opt_str("filter"))]
        chunk, extra = page(
            selected, req, default_limit=25, max_limit=100, limit_param="max_results"
        )
        extra.pop("has_more", None)
        out: JSON = {**extra}
        if chunk:
            out["statuses"] = [self._render(p, req.now, full=False) for p in chunk]
        return out

    def start_update(self, req: SimRequest) -> JSON:
        """POST pipelines/{id}/updates: refuses a second concurrent update (409)."""
        pipeline = self._pipeline(req)
        active = pipeline.active(req.now)
        if active is not None:
            raise conflict(
                f"Cannot start a new update: pipeline {pipeline.pipeline_id} has an active "
                f"update {active.update_id}."
            )
        timeline = self._world.timeline_for(
            "updates", [("pipeline_id", pipeline.pipeline_id), ("name", pipeline.spec.get("name"))]
        )
        update_id = str(uuid.UUID(int=self._world.new_id() << 64))
        pipeline.updates.append(
            Update(update_id, dict(req.body), Progress(timeline, req.now), req.now)
        )
        self._world.record_created(
            "updates", update_id, pipeline_id=pipeline.pipeline_id, cause=req.get("cause")
        )
        return {"update_id": update_id}

    def get_update(self, req: SimRequest) -> JSON:
        """GET pipelines/{id}/updates/{update_id}: ``{"update": {...}}``."""
        pipeline = self._pipeline(req)
        for update in pipeline.updates:
            if update.update_id == req.params["update_id"]:
                return {"update": self._render_update(pipeline, update, req.now)}
        raise not_found(f"Update {req.params['update_id']} does not exist.")

    def list_updates(self, req: SimRequest) -> JSON:
        """GET pipelines/{id}/updates: newest first."""
        pipeline = self._pipeline(req)
        updates = list(reversed(pipeline.updates))
        chunk, extra = page(
            updates, req, default_limit=25, max_limit=100, limit_param="max_results"
        )
        extra.pop("has_more", None)
        return {"updates": [self._render_update(pipeline, u, req.now) for u in chunk], **extra}

    def stop(self, req: SimRequest) -> JSON:
        """POST pipelines/{id}/stop: the active update goes STOPPING, then CANCELED."""
        pipeline = self._pipeline(req)
        active = pipeline.active(req.now)
        if active is not None and active.progress.current(req.now).state != "STOPPING":
            active.progress.restart((_p("STOPPING", STOP_SECONDS), _p("CANCELED")), req.now)
        return {}

    def events(self, req: SimRequest) -> JSON:
        """GET pipelines/{id}/events: one ERROR event per failed update, newest first."""
        pipeline = self._pipeline(req)
        events = []
        for update in reversed(pipeline.updates):
            phase, began = update.progress.position(req.now)
            if phase.state == "FAILED":
                message = str(phase.fields.get("error_message", "Update failed."))
                exception = {"message": message}
                if "error_class" in phase.fields:
                    exception["class_name"] = str(phase.fields["error_class"])
                events.append(
                    {
                        "id": f"{update.update_id}-failed",
                        "event_type": "update_progress",
                        "level": "ERROR",
                        "message": f"Update {update.update_id[:6]} is FAILED.",
                        "timestamp": str(self._world.epoch_ms(began)),
                        "origin": {
                            "pipeline_id": pipeline.pipeline_id,
                            "update_id": update.update_id,
                        },
                        "error": {"fatal": True, "exceptions": [exception]},
                    }
                )
        return {"events": events}


_LIKE = re.compile(r"^\s*name\s+LIKE\s+'(.*)'\s*$", re.IGNORECASE)
_IN = re.compile(r"^\s*id\s+IN\s*\((.*)\)\s*$", re.IGNORECASE)


def _matches(pipeline: Pipeline, expression: str | None) -> bool:
    if not expression:
        return True
    like = _LIKE.match(expression)
    if like:
        pattern = re.escape(like.group(1)).replace("%", ".*").replace("_", ".")
        return re.fullmatch(pattern, str(pipeline.spec.get("name", "")), re.IGNORECASE) is not None
    ids = _IN.match(expression)
    if ids:
        wanted = {x.strip().strip("'\"") for x in ids.group(1).split(",")}
        return pipeline.pipeline_id in wanted
    raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Unsupported filter: {expression}")
