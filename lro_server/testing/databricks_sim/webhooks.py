"""Job notification webhooks: the simulator POSTs to configured destinations, as Databricks.

A destination (Databricks' "notification destination" of type webhook) has an id, a URL
and basic-auth credentials. A run names destinations in ``webhook_notifications``
(``on_start``/``on_success``/``on_failure``: ``[{"id": ...}]``), from its runs/submit body
or from its job's settings. Timelines are evaluated lazily, so a delivery loop looks at the
runs every few milliseconds and posts each event once, when the run enters it, with the
payload shape Databricks sends (``event_type``, ``workspace_id``, ``run``, ``job``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .job_runs import SUCCEEDED, JobRun, is_terminal
from .world import World

__all__ = ["Delivery", "Destination", "WebhookDelivery"]

_log = logging.getLogger(__name__)
#: Real seconds between two looks at the runs.
TICK_SECONDS = 0.01


@dataclass(frozen=True)
class Destination:
    """Where a destination's webhooks go."""

    url: str
    username: str = ""
    password: str = ""


@dataclass
class Delivery:
    """One webhook the simulator sent (or tried to): for tests' asserts."""

    destination_id: str
    event_type: str
    run_id: int
    status: int = 0
    error: str = ""
    sent_at: float = 0.0


@dataclass
class _Hooks:
    events: dict[str, list[str]]
    sent: set[str] = field(default_factory=set)


def hook_ids(notifications: Any) -> dict[str, list[str]]:
    """``webhook_notifications`` → event → destination ids."""
    out: dict[str, list[str]] = {}
    if not isinstance(notifications, Mapping):
        return out
    for event in ("on_start", "on_success", "on_failure"):
        ids = [str(h["id"]) for h in notifications.get(event) or [] if isinstance(h, Mapping)]
        if ids:
            out[event] = ids
    return out


class WebhookDelivery:
    """Destinations, the runs that notify them, and the loop that posts."""

    def __init__(self, world: World) -> None:
        self._world = world
        self.destinations: dict[str, Destination] = {}
        self._runs: dict[int, tuple[JobRun, _Hooks]] = {}
        self.deliveries: list[Delivery] = []
        self._task: asyncio.Task[None] | None = None

    def watch(self, run: JobRun, notifications: Any) -> None:
        """Notify ``run``'s events to the destinations ``notifications`` names (under lock)."""
        events = hook_ids(notifications)
        if events:
            self._runs[run.run_id] = (run, _Hooks(events))

    def reset(self) -> None:
        """Forgets destinations, watched runs and deliveries (under lock)."""
        self.destinations.clear()
        self._runs.clear()
        self.deliveries.clear()

    def start(self) -> None:
        """Starts the delivery loop on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stops the delivery loop."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _due(self) -> list[tuple[Destination, Delivery, dict[str, Any]]]:
        world = self._world
        out = []
        with world.lock:
            now = world.now()
            for run, hooks in list(self._runs.values()):
                phase, _ = run.phase(now)
                if {"on_success", "on_failure"} & hooks.sent and not is_terminal(phase.state):
                    hooks.sent.clear()  # repaired: the run notifies its events again
                events = []
                if phase.state in ("RUNNING", "TERMINATING") or is_terminal(phase.state):
                    events.append("on_start")
                if is_terminal(phase.state):
                    result = phase.fields.get("result_state")
                    events.append("on_success" if result in SUCCEEDED else "on_failure")
                for event in events:
                    if event in hooks.sent:
                        continue
                    hooks.sent.add(event)
                    for destination_id in hooks.events.get(event, []):
                        destination = self.destinations.get(destination_id)
                        if destination is None:
                            continue
                        delivery = Delivery(destination_id, f"jobs.{event}", run.run_id)
                        self.deliveries.append(delivery)
                        out.append((destination, delivery, self._payload(run, event)))
        return out

    def _payload(self, run: JobRun, event: str) -> dict[str, Any]:
        return {
            "event_type": f"jobs.{event}",
            "workspace_id": "1234567890123456",
            "run": {"run_id": run.run_id, "run_name": run.run_name},
            "job": {"job_id": run.job_id, "name": run.run_name},
        }

    async def _loop(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            while True:
                for destination, delivery, payload in self._due():
                    await self._post(session, destination, delivery, payload)
                await asyncio.sleep(TICK_SECONDS)

    async def _post(
        self,
        session: aiohttp.ClientSession,
        destination: Destination,
        delivery: Delivery,
        payload: dict[str, Any],
    ) -> None:
        headers = {}
        if destination.username:
            secret = f"{destination.username}:{destination.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(secret).decode()
        try:
            async with session.post(destination.url, json=payload, headers=headers) as response:
                delivery.status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            delivery.error = str(exc) or type(exc).__name__
            _log.info("webhook to %s failed: %s", destination.url, delivery.error)
        delivery.sent_at = asyncio.get_running_loop().time()
