"""Command execution (API 1.2): execution contexts and commands on a running cluster."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .clusters import ClustersFamily
from .errors import invalid_parameter, invalid_state, not_found
from .routing import JSON, Route, SimRequest, api
from .timeline import Phase, Progress, Timeline
from .world import World

__all__ = ["COMMAND_PRESETS", "CONTEXT_PRESETS", "CommandsFamily"]


def _p(state: str, seconds: float | None = None, **fields: Any) -> Phase:
    return Phase(state, seconds, fields)


#: Named timelines of execution contexts.
CONTEXT_PRESETS: Mapping[str, Timeline] = {
    "default": (_p("Pending", 0.1), _p("Running")),
    "hold": (_p("Pending"),),
    "error": (_p("Pending", 0.1), _p("Error")),
}

_ERROR = {
    "resultType": "error",
    "summary": "<span class='ansi-red-fg'>ZeroDivisionError</span>: division by zero",
    "cause": "ZeroDivisionError: division by zero\n---------------------------------------\n"
    "ZeroDivisionError Traceback (most recent call last)\n----> 1 1/0",
}

#: Named timelines of commands. Phase fields become the ``results`` object when the
#: command ends (``resultType``, ``data``, ``cause``, ``summary``, ``schema``,
#: ``truncated``...). A failing command is ``Finished`` with ``resultType: "error"``.
COMMAND_PRESETS: Mapping[str, Timeline] = {
    "default": (
        _p("Queued", 0.05),
        _p("Running", 0.2),
        _p("Finished", resultType="text", data="2"),
    ),
    "hold": (_p("Queued", 0.05), _p("Running")),
    "error": (_p("Queued", 0.05), _p("Running", 0.2), Phase("Finished", None, _ERROR)),
    "table": (
        _p("Queued", 0.05),
        _p("Running", 0.2),
        _p(
            "Finished",
            resultType="table",
            data=[[1, "a"], [2, "b"]],
            schema=[{"name": "id", "type": '"integer"'}, {"name": "v", "type": '"string"'}],
            truncated=False,
            isJsonSchema=True,
        ),
    ),
}

_ENDED = frozenset({"Finished", "Cancelled", "Error"})
CANCEL_SECONDS = 0.1


@dataclass
class Context:
    """An execution context on a cluster."""

    context_id: str
    cluster_id: str
    language: str
    progress: Progress
    destroyed: bool = False


@dataclass
class Command:
    """A command run in a context."""

    command_id: str
    context_id: str
    cluster_id: str
    command: str
    progress: Progress


class CommandsFamily:
    """Contexts (Pending → Running) and commands (Queued → Running → Finished)."""

    presets: Mapping[str, Mapping[str, Timeline]] = {
        "contexts": CONTEXT_PRESETS,
        "commands": COMMAND_PRESETS,
    }

    def __init__(self, world: World, clusters: ClustersFamily) -> None:
        """Creates an empty family in ``world`` using the clusters of ``clusters``."""
        self._world = world
        self._clusters = clusters
        self.contexts: dict[str, Context] = {}
        self.commands: dict[str, Command] = {}

    def reset(self) -> None:
        """Forgets every context and command."""
        self.contexts.clear()
        self.commands.clear()

    def routes(self) -> list[Route]:
        """Returns the 1.2 endpoints."""
        return [
            Route("POST", api("1.2", "contexts/create"), self.create_context),
            Route("GET", api("1.2", "contexts/status"), self.context_status),
            Route("POST", api("1.2", "contexts/destroy"), self.destroy_context),
            Route("POST", api("1.2", "commands/execute"), self.execute),
            Route("GET", api("1.2", "commands/status"), self.command_status),
            Route("POST", api("1.2", "commands/cancel"), self.cancel),
        ]

    def finish(self, kind: str, entity_id: str, phase: Phase) -> None:
        """Moves context or command ``entity_id`` to ``phase`` now."""
        entity = self.contexts[entity_id] if kind == "contexts" else self.commands[entity_id]
        entity.progress.restart((phase,), self._world.now())

    def _context(self, req: SimRequest) -> Context:
        cluster_id = str(req.require("clusterId"))
        context_id = str(req.require("contextId"))
        self._clusters.cluster(cluster_id)
        context = self.contexts.get(context_id)
        if context is None or context.cluster_id != cluster_id or context.destroyed:
            raise not_found(f"Context {context_id} does not exist on cluster {cluster_id}.")
        return context

    def create_context(self, req: SimRequest) -> JSON:
        """contexts/create: needs a RUNNING cluster; answers ``{"id"}``."""
        cluster_id = str(req.require("clusterId"))
        cluster = self._clusters.cluster(cluster_id)
        state = cluster.state(req.now)
        if state != "RUNNING":
            raise invalid_state(f"Cluster {cluster_id} is in unexpected state {state.title()}.")
        language = str(req.get("language") or "python")
        timeline = self._world.timeline_for(
            "contexts", [("cluster_id", cluster_id), ("language", language)]
        )
        context_id = str(self._world.new_id() * 7919)
        self.contexts[context_id] = Context(
            context_id, cluster_id, language, Progress(timeline, req.now)
        )
        self._world.record_created("contexts", context_id, cluster_id=cluster_id)
        return {"id": context_id}

    def context_status(self, req: SimRequest) -> JSON:
        """contexts/status: ``{"id", "status"}``."""
        context = self._context(req)
        return {"id": context.context_id, "status": context.progress.current(req.now).state}

    def destroy_context(self, req: SimRequest) -> JSON:
        """contexts/destroy: the context and its running commands go away."""
        context = self._context(req)
        context.destroyed = True
        for command in self.commands.values():
            ended = command.progress.current(req.now).state in _ENDED
            if command.context_id == context.context_id and not ended:
                command.progress.restart((_p("Cancelled"),), req.now)
        return {"id": context.context_id}

    def execute(self, req: SimRequest) -> JSON:
        """commands/execute: needs a Running context; answers ``{"id"}``."""
        context = self._context(req)
        if context.progress.current(req.now).state != "Running":
            raise invalid_state(f"Context {context.context_id} is not running.")
        text = req.get("command")
        if not isinstance(text, str):
            raise invalid_parameter("Missing required field: command")
        timeline = self._world.timeline_for(
            "commands", [("command", text), ("context_id", context.context_id)]
        )
        command_id = f"{self._world.new_id():x}".rjust(32, "0")
        self.commands[command_id] = Command(
            command_id, context.context_id, context.cluster_id, text, Progress(timeline, req.now)
        )
        self._world.record_created(
            "commands", command_id, context_id=context.context_id, command=text
        )
        return {"id": command_id}

    def _command(self, req: SimRequest) -> Command:
        context = self._context(req) if req.get("contextId") is not None else None
        command_id = str(req.require("commandId"))
        command = self.commands.get(command_id)
        if command is None or (context is not None and command.context_id != context.context_id):
            raise not_found(f"Command {command_id} does not exist.")
        return command

    def command_status(self, req: SimRequest) -> JSON:
        """commands/status: ``{"id", "status", "results"}`` (results once it ended)."""
        command = self._command(req)
        phase = command.progress.current(req.now)
        out: JSON = {"id": command.command_id, "status": phase.state}
        if phase.state in _ENDED:
            results = dict(phase.fields)
            if phase.state == "Cancelled" and not results:
                results = {"resultType": "error", "cause": "CommandCancelledException"}
            out["results"] = results or {"resultType": "text", "data": ""}
        return out

    def cancel(self, req: SimRequest) -> JSON:
        """commands/cancel: Cancelling, then Cancelled a moment later."""
        command = self._command(req)
        if command.progress.current(req.now).state not in _ENDED:
            command.progress.restart((_p("Cancelling", CANCEL_SECONDS), _p("Cancelled")), req.now)
        return {"id": command.command_id}
