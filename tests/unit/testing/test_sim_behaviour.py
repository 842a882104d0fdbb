"""The simulator's runs as Databricks runs them: task dependencies, failing upstream tasks,
and the command line's knobs (run seconds, fail ratio, hold and release, the demo job)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue

from lro_server.testing.databricks_sim import ManualClock, RunBehaviour, SimulatorThread
from lro_server.testing.databricks_sim.behaviour import FIRST_TASK_ERROR, PENDING_SECONDS

ROOT = Path(__file__).resolve().parents[3]
#: a, then b and c (both after a), then d after b; e on its own.
GRAPH = [
    {"task_key": "a"},
    {"task_key": "b", "depends_on": [{"task_key": "a"}]},
    {"task_key": "c", "depends_on": [{"task_key": "a"}]},
    {"task_key": "d", "depends_on": [{"task_key": "b"}]},
    {"task_key": "e"},
]


def _tasks(w: WorkspaceClient, run_id: int) -> dict[str, tuple[str, str | None]]:
    run = w.api_client.do("GET", "/api/2.2/jobs/runs/get", query={"run_id": run_id})
    assert isinstance(run, dict)
    return {
        t["task_key"]: (t["state"]["life_cycle_state"], t["state"].get("result_state"))
        for t in run["tasks"]
    }


def _run(w: WorkspaceClient, run_id: int) -> dict[str, Any]:
    run = w.api_client.do("GET", "/api/2.2/jobs/runs/get", query={"run_id": run_id})
    assert isinstance(run, dict)
    return run


def _submit(w: WorkspaceClient, tasks: list[dict[str, Any]], name: str = "graph") -> int:
    answer = w.api_client.do(
        "POST", "/api/2.2/jobs/runs/submit", body={"run_name": name, "tasks": tasks}
    )
    assert isinstance(answer, dict)
    return int(answer["run_id"])


@pytest.fixture
def behaved(
    sim_clock: ManualClock, make_client: Callable[..., WorkspaceClient]
) -> Iterator[Callable[[RunBehaviour], tuple[SimulatorThread, WorkspaceClient]]]:
    """Simulators on the manual clock with a RunBehaviour, and an SDK client for each."""
    started: list[SimulatorThread] = []

    def make(behaviour: RunBehaviour) -> tuple[SimulatorThread, WorkspaceClient]:
        sim = SimulatorThread(clock=sim_clock, behaviour=behaviour, demo_job=True)
        sim.start()
        started.append(sim)
        return sim, make_client(host=sim.url)

    yield make
    for sim in started:
        sim.stop()


def test_tasks_wait_for_their_dependencies(sim, w):
    run_id = _submit(w, GRAPH)
    sim.advance(0.1)  # RUNNING for 0.3 s: three levels of 0.1 s each
    assert _tasks(w, run_id) == {
        "a": ("RUNNING", None),
        "b": ("BLOCKED", None),
        "c": ("BLOCKED", None),
        "d": ("BLOCKED", None),
        "e": ("RUNNING", None),
    }
    sim.advance(0.15)
    assert _tasks(w, run_id) == {
        "a": ("TERMINATED", "SUCCESS"),
        "b": ("RUNNING", None),
        "c": ("RUNNING", None),
        "d": ("BLOCKED", None),
        "e": ("TERMINATED", "SUCCESS"),
    }
    assert _run(w, run_id)["state"]["life_cycle_state"] == "RUNNING"
    sim.advance(1)
    assert set(_tasks(w, run_id).values()) == {("TERMINATED", "SUCCESS")}
    assert _run(w, run_id)["tasks"][3]["depends_on"] == [{"task_key": "b"}]


def test_a_failed_task_makes_its_downstream_upstream_failed(sim, w):
    sim.set_timeline("runs", "failed", run_name="graph")
    run_id = _submit(w, GRAPH)
    sim.advance(1)
    run = _run(w, run_id)
    assert run["state"]["result_state"] == "FAILED"
    assert _tasks(w, run_id) == {
        "a": ("TERMINATED", "FAILED"),
        "b": ("TERMINATED", "UPSTREAM_FAILED"),
        "c": ("TERMINATED", "UPSTREAM_FAILED"),
        "d": ("TERMINATED", "UPSTREAM_FAILED"),
        "e": ("TERMINATED", "SUCCESS"),  # not downstream of a: it did its work
    }
    failed = run["tasks"][0]["state"]["state_message"]
    assert failed == "AssertionError: the input table is empty"


def test_a_bad_dependency_graph_is_refused(w):
    for tasks, message in [
        ([{"task_key": "a", "depends_on": [{"task_key": "x"}]}], "unknown task 'x'"),
        (
            [
                {"task_key": "a", "depends_on": [{"task_key": "b"}]},
                {"task_key": "b", "depends_on": [{"task_key": "a"}]},
            ],
            "cycle",
        ),
    ]:
        with pytest.raises(InvalidParameterValue, match=message):
            _submit(w, tasks)
        with pytest.raises(InvalidParameterValue, match=message):
            w.api_client.do("POST", "/api/2.2/jobs/create", body={"name": "x", "tasks": tasks})


def test_run_seconds_is_the_time_of_each_task(behaved):
    sim, w = behaved(RunBehaviour(run_seconds=10))
    run_id = _submit(w, GRAPH[:2])  # a, then b: 20 s of tasks
    sim.advance(PENDING_SECONDS + 9)
    assert _tasks(w, run_id) == {"a": ("RUNNING", None), "b": ("BLOCKED", None)}
    sim.advance(2)
    assert _tasks(w, run_id) == {"a": ("TERMINATED", "SUCCESS"), "b": ("RUNNING", None)}
    sim.advance(9.5)
    run = _run(w, run_id)
    assert run["state"]["life_cycle_state"] == "TERMINATED"
    assert run["state"]["result_state"] == "SUCCESS"


def test_fail_ratio_fails_the_first_task_with_a_realistic_error(behaved):
    sim, w = behaved(RunBehaviour(run_seconds=1, fail_ratio=1.0))
    run_id = _submit(w, GRAPH)
    sim.advance(PENDING_SECONDS + 0.5)
    assert _run(w, run_id)["state"]["life_cycle_state"] == "RUNNING"
    sim.advance(1)  # the first level ran: the run ends there
    run = _run(w, run_id)
    assert run["state"]["result_state"] == "FAILED"
    assert run["tasks"][0]["state"]["state_message"] == FIRST_TASK_ERROR
    assert _tasks(w, run_id)["d"] == ("TERMINATED", "UPSTREAM_FAILED")


def test_fail_ratio_is_a_share_of_runs(behaved):
    sim, w = behaved(RunBehaviour(run_seconds=0, fail_ratio=0.3))
    runs = [_submit(w, [{"task_key": "only"}], name=f"r{i}") for i in range(200)]
    sim.advance(PENDING_SECONDS + 1)
    failed = sum(_run(w, r)["state"]["result_state"] == "FAILED" for r in runs)
    assert 40 <= failed <= 80, failed  # seeded: the same share on every run of the test


def test_held_runs_wait_for_release_and_end_as_drawn(behaved):
    sim, w = behaved(RunBehaviour(run_seconds=1, hold=True, fail_ratio=0.5))
    runs = [_submit(w, GRAPH[:2], name=f"held{i}") for i in range(12)]
    sim.advance(3600)
    for run_id in runs:
        assert _run(w, run_id)["state"]["life_cycle_state"] == "RUNNING"
        # The first level ran; the last level holds.
        assert _tasks(w, run_id) == {"a": ("TERMINATED", "SUCCESS"), "b": ("RUNNING", None)}
    one = requests.post(f"{sim.url}/_sim/runs/release", json={"run_id": runs[0]}, timeout=5)
    assert one.json() == {"released": [runs[0]]}
    again = requests.post(f"{sim.url}/_sim/runs/release", json={"run_id": runs[0]}, timeout=5)
    assert again.status_code == 400 and "not held" in again.json()["message"]
    rest = requests.post(f"{sim.url}/_sim/runs/release", timeout=5).json()["released"]
    assert rest == sorted(runs[1:])
    results = {_run(w, r)["state"]["result_state"] for r in runs}
    assert results == {"SUCCESS", "FAILED"}


def test_a_held_run_can_be_cancelled(behaved):
    sim, w = behaved(RunBehaviour(hold=True))
    run_id = _submit(w, GRAPH[:1])
    sim.advance(60)
    w.api_client.do("POST", "/api/2.2/jobs/runs/cancel", body={"run_id": run_id})
    sim.advance(1)
    assert _run(w, run_id)["state"]["result_state"] == "CANCELED"


def test_the_demo_job_is_job_1_with_dependencies(behaved):
    sim, w = behaved(RunBehaviour(run_seconds=1))
    job = w.api_client.do("GET", "/api/2.2/jobs/get", query={"job_id": 1})
    assert isinstance(job, dict) and job["settings"]["name"] == "demo"
    run = w.api_client.do("POST", "/api/2.2/jobs/run-now", body={"job_id": 1})
    assert isinstance(run, dict)
    sim.advance(PENDING_SECONDS + 1.5)
    assert _tasks(w, run["run_id"]) == {
        "ingest": ("TERMINATED", "SUCCESS"),
        "features": ("RUNNING", None),
        "quality": ("RUNNING", None),
        "train": ("BLOCKED", None),
    }
    sim.reset()
    assert w.api_client.do("GET", "/api/2.2/jobs/get", query={"job_id": 1})  # kept by reset


def test_the_command_line_simulator_holds_and_releases():
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "lro_server.cli.server", "simulate-databricks"]
    proc = subprocess.Popen(
        [*command, "--port", "0", "--run-seconds", "0.2", "--hold"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().rsplit(" ", 1)[-1].strip()
        assert "job_id 1" in proc.stdout.readline()
        headers = {"Authorization": "Bearer dev"}
        started = requests.post(
            f"{url}/api/2.2/jobs/run-now", json={"job_id": 1}, headers=headers, timeout=5
        )
        run_id = started.json()["run_id"]
        released = requests.post(f"{url}/_sim/runs/release", json={}, timeout=5).json()
        assert released == {"released": [run_id]}
        run = requests.get(
            f"{url}/api/2.2/jobs/runs/get", params={"run_id": run_id}, headers=headers, timeout=5
        ).json()
        assert run["state"]["result_state"] == "SUCCESS"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_the_command_line_simulator_documents_its_flags_and_endpoints():
    command = [sys.executable, "-m", "lro_server.cli.server", "simulate-databricks", "--help"]
    text = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    for words in ("--run-seconds", "--fail-ratio", "--hold", "POST /_sim/runs/release", "job_id 1"):
        assert words in text, words
    bad = subprocess.run(
        [*command[:-1], "--fail-ratio", "2"], check=False, capture_output=True, text=True, cwd=ROOT
    )
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines() == [
        "lro-server simulate-databricks: fail_ratio must be within 0 and 1, got 2.0"
    ]
