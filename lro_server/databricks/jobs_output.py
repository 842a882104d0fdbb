"""What a finished run's tasks returned: ``runs/get-output`` once per task run, as TaskOutput.

Fetched once, when the run ends, before the operation is finished: a success carries every
task's output in its response, a failure names the failing task and its error in the
operation's message and carries a TaskOutput per failed task in its details. Each text is
cut to a size of its own (below) so a chatty task cannot make a giant record; the flag of
each text says when it was cut (by Databricks or here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lro_server._proto.lro.databricks.v1 import jobs_pb2
from lro_server.core.errors import LroError, Unavailable
from lro_server.databricks.client import Databricks

#: REST path prefix of the jobs family (API 2.2), for every module of the family.
API = "/api/2.2/jobs"
#: Longest notebook exit value kept (characters).
NOTEBOOK_RESULT_CHARS = 16 * 1024
#: Longest error message kept.
ERROR_CHARS = 4 * 1024
#: Longest error trace kept.
ERROR_TRACE_CHARS = 16 * 1024
#: Longest logs kept.
LOGS_CHARS = 16 * 1024
#: Most task outputs fetched for one run (failed tasks first); the rest are left out.
MAX_TASK_OUTPUTS = 100
#: Result states of a task that did its work (its output is not a failure detail).
SUCCEEDED = frozenset({"SUCCESS", "SUCCESS_WITH_FAILURES", "EXCLUDED"})


def _cut(text: Any, limit: int) -> tuple[str, bool]:
    value = "" if text is None else str(text)
    return (value[:limit], True) if len(value) > limit else (value, False)


def end_state(run: Mapping[str, Any]) -> str:
    """The result state of a run or task run, else its life cycle state ("" when absent)."""
    state = run.get("state") or {}
    return str(state.get("result_state") or state.get("life_cycle_state") or "")


def failed(task: Mapping[str, Any]) -> bool:
    """Whether a task of a finished run failed (its result is not a success)."""
    state = task.get("state") or {}
    result = str(state.get("result_state") or "")
    if state.get("life_cycle_state") == "INTERNAL_ERROR":
        return True
    return bool(result) and result not in SUCCEEDED


async def task_outputs(dbx: Databricks, run: Mapping[str, Any]) -> list[jobs_pb2.TaskOutput]:
    """``runs/get-output`` of each task run of ``run`` (failed tasks first).

    Raises:
        Unavailable: Databricks was throttling or down: the poll is retried later, and the
            run is read again then (nothing is recorded before every output is in).
    """
    tasks: Sequence[Mapping[str, Any]] = run.get("tasks") or []
    ordered = sorted(tasks, key=lambda t: not failed(t))[:MAX_TASK_OUTPUTS]
    outputs = []
    for task in ordered:
        run_id = int(task.get("run_id") or 0)
        output = jobs_pb2.TaskOutput(
            task_key=str(task.get("task_key") or ""), run_id=run_id, result_state=end_state(task)
        )
        if run_id:
            try:
                answer = await dbx.call("GET", f"{API}/runs/get-output", query={"run_id": run_id})
            except Unavailable:
                raise
            except LroError as exc:
                output.unavailable = exc.message[:ERROR_CHARS]
            else:
                _fill(output, answer)
        outputs.append(output)
    return outputs


def _fill(output: jobs_pb2.TaskOutput, answer: Mapping[str, Any]) -> None:
    notebook = answer.get("notebook_output") or {}
    if "result" in notebook:
        output.notebook_result, cut = _cut(notebook.get("result"), NOTEBOOK_RESULT_CHARS)
        output.notebook_result_truncated = cut or bool(notebook.get("truncated"))
    output.error, _ = _cut(answer.get("error"), ERROR_CHARS)
    output.error_trace, output.error_trace_truncated = _cut(
        answer.get("error_trace"), ERROR_TRACE_CHARS
    )
    if answer.get("logs") is not None:
        output.logs, cut = _cut(answer.get("logs"), LOGS_CHARS)
        output.logs_truncated = cut or bool(answer.get("logs_truncated"))


def failure_message(outputs: Sequence[jobs_pb2.TaskOutput], fallback: str) -> str:
    """The failed run's message: the first failed task and its own error, else ``fallback``."""
    for output in outputs:
        if output.error and output.result_state not in SUCCEEDED:
            return f"task {output.task_key} failed: {output.error.strip()}"
    return fallback
