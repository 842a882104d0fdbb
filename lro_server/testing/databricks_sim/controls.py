"""The control API of the simulator: timelines, faults, call counts, finishing held entities."""

from __future__ import annotations

from typing import Any

from .clock import ManualClock
from .faults import Fault, FaultKind
from .jobs import JobsFamily
from .timeline import Phase, TimelineSpec, parse_timeline
from .world import CallRecord, CreatedEntity, World

__all__ = ["SimulatorControls"]


class SimulatorControls:
    """Control methods shared by :class:`DatabricksSimulator` and :class:`SimulatorThread`.

    Every method is thread-safe: it takes the simulator's state lock, which the REST
    handlers also hold while they run.
    """

    _world: World

    def set_timeline(self, kind: str, timeline: TimelineSpec, **match: str | int) -> None:
        """Configures what new entities of ``kind`` go through.

        Args:
            kind: ``runs``, ``clusters``, ``contexts``, ``commands``, ``libraries``,
                ``updates`` (pipelines) or ``warehouses``.
            timeline: A preset name of the kind (``"default"``, ``"hold"``, ``"failed"``...)
                or a sequence of :class:`Phase` (or their JSON dicts).
            **match: Nothing for the kind's default, or one selector, e.g.
                ``job_id=12``, ``run_name="nightly"``, ``cluster_name="etl"``.

        Raises:
            KeyError: Unknown kind.
            ValueError: Unknown preset or a bad timeline.
        """
        phases = parse_timeline(timeline, self._world.presets(kind))
        self._world.set_timeline(kind, phases, match)

    def clear_timelines(self) -> None:
        """Forgets configured timelines: each kind's ``default`` preset applies again."""
        self._world.clear_timelines()

    def finish(self, kind: str, entity_id: str | int, state: str, **fields: Any) -> None:
        """Moves an entity (typically held) to a final ``state`` now.

        Args:
            kind: The entity's timeline kind.
            entity_id: Its id (run id, cluster id, ``"<cluster_id>/<library key>"``...).
            state: The state to end in, e.g. ``"TERMINATED"`` or ``"RUNNING"``.
            **fields: Phase fields of the kind, e.g. ``result_state="FAILED"``.

        Raises:
            KeyError: No such kind or entity.
        """
        with self._world.lock:
            self._world.family_of(kind).finish(kind, str(entity_id), Phase(state, None, fields))

    def finish_run(
        self,
        run_id: int,
        result_state: str | None = "SUCCESS",
        *,
        state_message: str = "",
        life_cycle_state: str = "TERMINATED",
        failing_task: str | None = None,
        task_message: str | None = None,
    ) -> None:
        """Ends a (held) job run now.

        Args:
            run_id: The run.
            result_state: ``SUCCESS``, ``FAILED``, ``TIMEDOUT``... (``None``: none).
            state_message: The run's message.
            life_cycle_state: ``TERMINATED``, ``INTERNAL_ERROR`` or ``SKIPPED``.
            failing_task: The task key that failed (default: the first task).
            task_message: The failing task's own message (default: ``state_message``).
        """
        fields: dict[str, Any] = {"state_message": state_message}
        if result_state is not None:
            fields["result_state"] = result_state
        if failing_task is not None:
            fields["failing_task"] = failing_task
        if task_message is not None:
            fields["task_message"] = task_message
        self.finish("runs", run_id, life_cycle_state, **fields)

    def release_runs(self, run_id: int | None = None) -> list[int]:
        """Ends held runs now, each the way it was drawn when it started (success, or its
        first task's failure with ``--fail-ratio``); returns the released run ids.

        Args:
            run_id: The run to release; ``None`` releases every held run.

        Raises:
            KeyError: No such run.
            ValueError: The run named is not held.
        """
        with self._world.lock:
            family = self._world.family_of("runs")
            if not isinstance(family, JobsFamily):  # pragma: no cover - runs are the jobs'
                raise TypeError("runs are not served by the jobs family")
            return family.release(run_id)

    def add_webhook_destination(
        self, destination_id: str, url: str, *, username: str = "", password: str = ""
    ) -> None:
        """Configures a webhook notification destination (basic auth when ``username``)."""
        from .webhooks import Destination

        with self._world.lock:
            self._world.webhooks.destinations[destination_id] = Destination(url, username, password)

    def webhook_deliveries(self) -> list[Any]:
        """Every webhook sent so far (:class:`~.webhooks.Delivery`), oldest first."""
        with self._world.lock:
            return list(self._world.webhooks.deliveries)

    def inject_fault(
        self,
        kind: FaultKind,
        *,
        path: str | None = None,
        method: str | None = None,
        times: int | None = None,
        probability: float | None = None,
        retry_after: int = 1,
        delay: float = 0.0,
    ) -> int:
        """Adds a fault rule; REST calls matching it fail (``/_sim/`` and ``.well-known``
        never do).

        Args:
            kind: ``rate_limit`` (429 + Retry-After), ``unavailable`` (503),
                ``drop_after_commit`` (apply, then close the connection unanswered),
                ``slow`` (wait ``delay`` seconds first) or ``slow_after_commit`` (apply,
                then wait ``delay`` seconds before answering).
            path: A regular expression searched in the path; ``None`` for every path.
            method: Only this HTTP method.
            times: Only the next N matching calls; ``None`` for all.
            probability: Each matching call fails with this chance (seeded random).
            retry_after: The Retry-After seconds of 429/503 answers.
            delay: The wait of a ``slow`` fault, in real seconds.

        Returns:
            The rule's id (for :meth:`remove_fault`).
        """
        fault = Fault(kind, path, method, times, probability, retry_after, delay)
        with self._world.lock:
            return self._world.faults.add(fault)

    def remove_fault(self, fault_id: int) -> None:
        """Removes one fault rule."""
        with self._world.lock:
            self._world.faults.remove(fault_id)

    def clear_faults(self) -> None:
        """Removes every fault rule."""
        with self._world.lock:
            self._world.faults.clear()

    def faults(self) -> list[Fault]:
        """Returns the active fault rules (with their hit counts)."""
        with self._world.lock:
            return self._world.faults.rules()

    def calls(
        self,
        path_contains: str | None = None,
        method: str | None = None,
        status: int | None = None,
    ) -> int:
        """Counts recorded REST calls (control calls are not recorded).

        Args:
            path_contains: A substring of the path (e.g. ``"jobs/runs/get"``).
            method: An HTTP method.
            status: An answered status (e.g. 429).
        """
        return len(self.call_log(path_contains, method, status))

    def call_log(
        self,
        path_contains: str | None = None,
        method: str | None = None,
        status: int | None = None,
    ) -> list[CallRecord]:
        """Returns the recorded REST calls matching the filters of :meth:`calls`."""
        return [
            c
            for c in self._world.calls()
            if (path_contains is None or path_contains in c.path)
            and (method is None or c.method == method.upper())
            and (status is None or c.status == status)
        ]

    def created(self, kind: str | None = None, **attrs: Any) -> list[CreatedEntity]:
        """Returns the entities created by REST calls, e.g. ``created("runs",
        idempotency_token="t1")``.

        Args:
            kind: ``runs``, ``jobs``, ``repairs``, ``clusters``, ``contexts``, ``commands``,
                ``pipelines``, ``updates``, ``warehouses``; ``None`` for all.
            **attrs: Attributes the creating call recorded, compared for equality.
        """
        return [
            e
            for e in self._world.created()
            if (kind is None or e.kind == kind)
            and all(e.attrs.get(k) == v for k, v in attrs.items())
        ]

    def advance(self, seconds: float) -> float:
        """Advances the simulator's clock when it is a :class:`ManualClock`.

        Raises:
            TypeError: The simulator runs on another clock.
        """
        clock = self._world.clock
        if not isinstance(clock, ManualClock):
            raise TypeError("the simulator was not given a ManualClock")
        return clock.advance(seconds)

    def reset(self) -> None:
        """Forgets entities, calls, faults and timelines (keeps the clock)."""
        self._world.reset()
