"""The control API over HTTP under ``/_sim/``, for driving a simulator in another process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .controls import SimulatorControls
from .faults import Fault

__all__ = ["control_routes"]

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _bad(message: str) -> web.Response:
    return web.json_response(
        {"error_code": "INVALID_PARAMETER_VALUE", "message": message}, status=400
    )


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body = await request.json()
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    return body


def control_routes(sim: SimulatorControls) -> list[tuple[str, str, _Handler]]:
    """Returns the ``/_sim/`` routes acting on ``sim``.

    Routes (JSON in and out; errors are 400 ``{"error_code", "message"}``):

    - ``POST /_sim/reset``
    - ``POST /_sim/timelines`` ``{"kind", "timeline": <preset> | [phase...], "match": {..}}``
    - ``DELETE /_sim/timelines``
    - ``POST /_sim/faults`` ``{"kind", "path", "method", "times", "probability",
      "retry_after", "delay"}`` → ``{"fault_id"}``; ``GET /_sim/faults``;
      ``DELETE /_sim/faults``; ``DELETE /_sim/faults/{fault_id}``
    - ``GET /_sim/calls?path_contains=&method=&status=`` → ``{"count", "calls"}``
    - ``GET /_sim/created?kind=&<attr>=<value>`` → ``{"entities"}``
    - ``POST /_sim/finish`` ``{"kind", "id", "state", <fields>...}``
    - ``POST /_sim/runs/{run_id}/finish`` ``{"result_state", "state_message",
      "life_cycle_state", "failing_task", "task_message"}``
    - ``POST /_sim/runs/release`` ``{"run_id"}`` (optional: every held run) →
      ``{"released": [run ids]}``
    - ``POST /_sim/clock/advance`` ``{"seconds"}`` (only with a manual clock)
    """

    def guarded(fn: Callable[[web.Request], Awaitable[Any]]) -> _Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                result = await fn(request)
            except (KeyError, ValueError, TypeError) as exc:
                return _bad(str(exc.args[0]) if exc.args else repr(exc))
            return web.json_response(result if result is not None else {})

        return handle

    async def reset(request: web.Request) -> None:
        sim.reset()

    async def set_timeline(request: web.Request) -> None:
        body = await _body(request)
        sim.set_timeline(body["kind"], body["timeline"], **(body.get("match") or {}))

    async def clear_timelines(request: web.Request) -> None:
        sim.clear_timelines()

    async def add_fault(request: web.Request) -> dict[str, Any]:
        fault = Fault.from_json(await _body(request))
        return {
            "fault_id": sim.inject_fault(
                fault.kind,
                path=fault.path,
                method=fault.method,
                times=fault.times,
                probability=fault.probability,
                retry_after=fault.retry_after,
                delay=fault.delay,
            )
        }

    async def list_faults(request: web.Request) -> dict[str, Any]:
        return {"faults": [f.to_json() for f in sim.faults()]}

    async def clear_faults(request: web.Request) -> None:
        sim.clear_faults()

    async def remove_fault(request: web.Request) -> None:
        sim.remove_fault(int(request.match_info["fault_id"]))

    async def calls(request: web.Request) -> dict[str, Any]:
        q = request.query
        status = q.get("status")
        log = sim.call_log(q.get("path_contains"), q.get("method"), int(status) if status else None)
        return {"count": len(log), "calls": [c.to_json() for c in log]}

    async def created(request: web.Request) -> dict[str, Any]:
        attrs = {k: v for k, v in request.query.items() if k != "kind"}
        found = [
            e
            for e in sim.created(request.query.get("kind"))
            if all(str(e.attrs.get(k)) == v for k, v in attrs.items())
        ]
        return {"entities": [e.to_json() for e in found]}

    async def finish(request: web.Request) -> None:
        body = await _body(request)
        kind, entity_id, state = body.pop("kind"), body.pop("id"), body.pop("state")
        sim.finish(kind, entity_id, state, **body)

    async def finish_run(request: web.Request) -> None:
        sim.finish_run(int(request.match_info["run_id"]), **(await _body(request)))

    async def release(request: web.Request) -> dict[str, Any]:
        run_id = (await _body(request)).get("run_id")
        return {"released": sim.release_runs(None if run_id is None else int(run_id))}

    async def advance(request: web.Request) -> dict[str, Any]:
        body = await _body(request)
        return {"now": sim.advance(float(body["seconds"]))}

    table: list[tuple[str, str, Callable[[web.Request], Awaitable[Any]]]] = [
        ("POST", "/_sim/reset", reset),
        ("POST", "/_sim/timelines", set_timeline),
        ("DELETE", "/_sim/timelines", clear_timelines),
        ("POST", "/_sim/faults", add_fault),
        ("GET", "/_sim/faults", list_faults),
        ("DELETE", "/_sim/faults", clear_faults),
        ("DELETE", "/_sim/faults/{fault_id:\\d+}", remove_fault),
        ("GET", "/_sim/calls", calls),
        ("GET", "/_sim/created", created),
        ("POST", "/_sim/finish", finish),
        ("POST", "/_sim/runs/{run_id:\\d+}/finish", finish_run),
        ("POST", "/_sim/runs/release", release),
        ("POST", "/_sim/clock/advance", advance),
    ]
    return [(method, path, guarded(fn)) for method, path, fn in table]
