"""Task dependencies of a job run, as Databricks honours them.

A task waits (BLOCKED) until every task of its ``depends_on`` succeeded; a task whose
upstream failed never runs and ends UPSTREAM_FAILED. Here a task's *level* is its place in
that order: 0 without dependencies, else one more than its deepest dependency. Tasks of one
level run side by side, levels one after the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import invalid_parameter

__all__ = ["TaskSpec", "downstream", "task_specs"]

#: One task: its key and the keys it depends on.
TaskSpec = tuple[str, tuple[str, ...]]


def task_specs(tasks: Sequence[Mapping[str, Any]]) -> list[TaskSpec]:
    """Keys and dependencies of a jobs/create or runs/submit ``tasks`` list, validated.

    Raises:
        ApiError: 400 INVALID_PARAMETER_VALUE for a missing or repeated key, a dependency on
            a task that is not there, or a cycle.
    """
    specs: list[TaskSpec] = []
    for task in tasks:
        key = str(task.get("task_key") or "")
        if not key:
            raise invalid_parameter("Missing required field: task_key")
        depends = task.get("depends_on") or []
        if not isinstance(depends, list):
            raise invalid_parameter(f"Task {key}: depends_on must be a list")
        specs.append((key, tuple(str((d or {}).get("task_key") or "") for d in depends)))
    keys = [key for key, _ in specs]
    if len(set(keys)) != len(keys):
        raise invalid_parameter("Task keys must be unique within a run")
    for key, depends in specs:
        for upstream in depends:
            if upstream not in keys:
                raise invalid_parameter(
                    f"Invalid dependency graph, task '{key}' depends on unknown task '{upstream}'"
                )
    levels(specs)  # refuses cycles
    return specs


def levels(specs: Sequence[TaskSpec]) -> dict[str, int]:
    """Level of each task (see the module docstring).

    Raises:
        ApiError: 400 INVALID_PARAMETER_VALUE when the dependencies form a cycle.
    """
    depends = dict(specs)
    found: dict[str, int] = {}
    visiting: set[str] = set()

    def level(key: str) -> int:
        if key in found:
            return found[key]
        if key in visiting:
            raise invalid_parameter(f"Invalid dependency graph, task '{key}' is in a cycle")
        visiting.add(key)
        found[key] = 1 + max((level(up) for up in depends.get(key, ())), default=-1)
        visiting.discard(key)
        return found[key]

    for key, _ in specs:
        level(key)
    return found


def downstream(specs: Sequence[TaskSpec], failed: str) -> set[str]:
    """Every task that depends, directly or not, on ``failed``."""
    reached: set[str] = set()
    frontier = {failed}
    while frontier:
        frontier = {key for key, depends in specs if key not in reached and set(depends) & frontier}
        reached |= frontier
    return reached
