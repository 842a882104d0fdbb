"""The jobs family's list walk: active runs first, then the completed ones that just ended,
against a fake runs/list that pages as Databricks does (25 a page, newest first)."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any, cast

from lro_server._proto.lro.databricks.v1 import jobs_pb2
from lro_server.databricks.client import Databricks
from lro_server.databricks.jobs import JobsFamily
from lro_server.databricks.work import Entity, RepairPolicy, Work

T0_MS = 1_750_000_000_000


class RunsList:
    """runs/list over ``runs`` (run_id → (start ms, terminal?)), recording each page read."""

    def __init__(self, runs: dict[int, tuple[int, bool]]) -> None:
        self.runs = runs
        self.pages: list[dict[str, Any]] = []
        self.outputs: list[int] = []  # task runs whose output was read

    async def call(self, method: str, path: str, *, query: dict[str, Any], **_: Any) -> Any:
        if path.endswith("/runs/get-output"):
            self.outputs.append(int(query["run_id"]))
            return {"notebook_output": {"result": f"task run {query['run_id']}"}}
        assert (method, path) == ("GET", "/api/2.2/jobs/runs/list")
        self.pages.append(dict(query))
        offset = int(base64.b64decode(query["page_token"])) if "page_token" in query else 0
        since = int(query.get("start_time_from", 0))
        chosen = [
            run_id
            for run_id, (start, terminal) in sorted(self.runs.items(), key=lambda r: -r[1][0])
            if start >= since
            and (terminal if query.get("completed_only") else True)
            and (not terminal if query.get("active_only") else True)
        ]
        page = chosen[offset : offset + int(query["limit"])]
        body: dict[str, Any] = {"runs": [self.render(run_id) for run_id in page]}
        if offset + len(page) < len(chosen):
            body["next_page_token"] = base64.b64encode(str(offset + len(page)).encode()).decode()
        return body

    def render(self, run_id: int) -> dict[str, Any]:
        start, terminal = self.runs[run_id]
        state = (
            {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"}
            if terminal
            else {"life_cycle_state": "RUNNING"}
        )
        task = {"task_key": "main", "run_id": run_id * 10, "state": state}
        return {"run_id": run_id, "job_id": 1, "start_time": start, "state": state, "tasks": [task]}


def _tracked(runs: dict[int, tuple[int, bool]], action: str = "run_now") -> list[Any]:
    return [
        (
            Work(action=action, entity=Entity(run_id=run_id), create_time_us=start * 1000),
            None,
        )
        for run_id, (start, _) in runs.items()
    ]


async def test_runs_ending_together_are_read_from_the_completed_list() -> None:
    # 100 of ours (ids 1-100); 60 just ended. Plus 40 older completed runs of others.
    ours = {i: (T0_MS + i * 1000, i <= 60) for i in range(1, 101)}
    others = {1000 + i: (T0_MS - 3_600_000 + i, True) for i in range(40)}
    api = RunsList({**ours, **others})
    observed = await JobsFamily().observe_many(cast(Databricks, api), _tracked(ours))

    assert all(o is not None for o in observed)
    done = [o for o in observed if o is not None and o.verdict.done]
    assert len(done) == 60
    active = [p for p in api.pages if p.get("active_only")]
    completed = [p for p in api.pages if p.get("completed_only")]
    assert len(active) == 2  # 40 active runs: two pages, the whole list
    # 60 ended runs: three pages; the others' old runs start before the window.
    assert len(completed) == 3
    assert completed[0]["start_time_from"] == T0_MS + 1000 - 5 * 60 * 1000
    # An ended run's tasks are on the list: only their outputs are read, no runs/get.
    assert sorted(api.outputs) == [i * 10 for i in range(1, 61)]
    responses = [o.response for o in done if isinstance(o.response, jobs_pb2.Run)]
    first = next(r for r in responses if r.run_id == 1)
    assert [out.notebook_result for out in first.outputs] == ["task run 10"]


async def test_an_ended_run_with_a_repair_policy_is_read_alone() -> None:
    ours = {1: (T0_MS, True), 2: (T0_MS + 1, False)}
    api = RunsList(ours)
    policy = RepairPolicy(max_repairs=1)
    tracked = [(dataclasses.replace(work, repair=policy), meta) for work, meta in _tracked(ours)]
    observed = await JobsFamily().observe_many(cast(Databricks, api), tracked)
    assert observed[0] is None and observed[1] is not None
    assert api.outputs == []


async def test_a_repair_or_a_list_cut_short_leaves_runs_to_single_reads() -> None:
    ours = {i: (T0_MS + i, True) for i in range(1, 4)}
    api = RunsList(ours)
    observed = await JobsFamily().observe_many(cast(Databricks, api), _tracked(ours, "repair"))
    assert observed == [None, None, None]  # a repaired run started long ago: read alone
    assert [p.get("active_only") for p in api.pages] == ["true"]


async def test_the_active_walk_stops_once_every_tracked_run_was_seen() -> None:
    runs = {i: (T0_MS + i, False) for i in range(1, 201)}
    api = RunsList(runs)
    newest = {i: runs[i] for i in range(190, 201)}
    observed = await JobsFamily().observe_many(cast(Databricks, api), _tracked(newest))
    assert all(o is not None for o in observed)
    assert len(api.pages) == 1
