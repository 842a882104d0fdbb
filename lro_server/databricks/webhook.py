"""Databricks job notification webhooks: which runs a payload is about.

Databricks posts ``{"event_type": "jobs.on_success", "workspace_id": ..., "run":
{"run_id": ...}, "job": {"job_id": ...}}`` to a generic webhook destination. Only the run
id is used, as a hint: the server re-reads the run itself and trusts nothing else in it.
"""

from __future__ import annotations

from typing import Any

from lro_server.core.errors import InvalidArgument

#: Event types of job notifications this server acts on (others are acknowledged).
JOB_EVENTS = frozenset(
    {
        "jobs.on_start",
        "jobs.on_success",
        "jobs.on_failure",
        "jobs.on_duration_warning_threshold_exceeded",
        "jobs.on_streaming_backlog_exceeded",
    }
)


def run_ids(payload: Any) -> list[int]:
    """The run ids a webhook payload names (empty for events this server ignores).

    Raises:
        InvalidArgument: The payload is not a job notification (no object, no run id).
    """
    if not isinstance(payload, dict):
        raise InvalidArgument("the webhook body must be a JSON object")
    event = payload.get("event_type")
    if not isinstance(event, str) or not event:
        raise InvalidArgument(
            "the webhook body has no event_type", metadata={"field": "event_type"}
        )
    if event not in JOB_EVENTS:
        return []
    run = payload.get("run")
    if not isinstance(run, dict):
        raise InvalidArgument("a job notification needs a run object", metadata={"field": "run"})
    ids = []
    for key in ("run_id", "parent_run_id"):
        value = run.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
            raise InvalidArgument(f"run.{key} must be a run id", metadata={"field": f"run.{key}"})
        if int(value) > 0:
            ids.append(int(value))
    if not ids:
        raise InvalidArgument("the run has no run_id", metadata={"field": "run.run_id"})
    return ids
