"""How runs behave when no timeline was configured for them (``simulate-databricks`` flags).

Tests configure timelines per job or run name (``set_timeline``); a simulator started from
the command line instead takes three knobs for every run it starts:

- ``run_seconds``: how long each task runs (tasks of one level side by side, levels in
  order, so a job ``a → b → c`` runs three times as long as one task);
- ``fail_ratio``: the share of runs whose first task fails (with a realistic error; the
  tasks that depend on it end UPSTREAM_FAILED, as on Databricks);
- ``hold``: runs stay RUNNING until cancelled or released (``POST /_sim/runs/release``);
  a released run ends the way it was drawn (success, or its first task's failure).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .timeline import Phase, Timeline

__all__ = ["FIRST_TASK_ERROR", "RunBehaviour"]

#: What the failing first task says: an error a Databricks user meets every day.
FIRST_TASK_ERROR = (
    "org.apache.spark.sql.AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] The table or view "
    "`main.raw.events` cannot be found. Verify the spelling and correctness of the schema "
    "and catalog."
)
#: How long a run is PENDING before its tasks start.
PENDING_SECONDS = 0.5
#: Seconds of one level when no run_seconds is given (the presets' RUNNING time).
DEFAULT_TASK_SECONDS = 0.3


@dataclass(frozen=True)
class RunBehaviour:
    """The command line's knobs for runs (see the module docstring).

    Attributes:
        run_seconds: How long each task runs; None for the default (0.3 s).
        fail_ratio: Share of runs, 0 to 1, whose first task fails.
        hold: Runs stay RUNNING until cancelled or released.
    """

    run_seconds: float | None = None
    fail_ratio: float = 0.0
    hold: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.fail_ratio <= 1.0:
            raise ValueError(f"fail_ratio must be within 0 and 1, got {self.fail_ratio}")
        if self.run_seconds is not None and self.run_seconds < 0:
            raise ValueError(f"run_seconds must not be negative, got {self.run_seconds}")

    @property
    def configured(self) -> bool:
        """Whether any knob differs from the presets' behaviour."""
        return self.run_seconds is not None or self.fail_ratio > 0 or self.hold

    def ending(self, rng: random.Random, first_task: str) -> Phase:
        """How one run ends: drawn once, when it starts."""
        if self.fail_ratio and rng.random() < self.fail_ratio:
            return Phase(
                "TERMINATED",
                None,
                {
                    "result_state": "FAILED",
                    "state_message": "Workload failed, see run output for details",
                    "failing_task": first_task,
                    "task_message": FIRST_TASK_ERROR,
                },
            )
        return Phase("TERMINATED", None, {"result_state": "SUCCESS", "state_message": ""})

    def timeline(self, ending: Phase, levels: int) -> Timeline:
        """The phases of a run with ``levels`` levels of tasks that ends with ``ending``."""
        task_seconds = self.task_seconds
        pending = Phase("PENDING", PENDING_SECONDS)
        if self.hold:
            return (pending, Phase("RUNNING"))
        # A failing first task ends the run after the first level; the rest never runs.
        running = task_seconds * (1 if ending.fields.get("failing_task") else levels)
        return (pending, Phase("RUNNING", running), ending)

    @property
    def task_seconds(self) -> float:
        """Seconds each level of tasks runs."""
        return DEFAULT_TASK_SECONDS if self.run_seconds is None else self.run_seconds
