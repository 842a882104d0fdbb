"""The control API over HTTP (for a simulator in another process) and the async entry point."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import requests
from databricks.sdk import WorkspaceClient

from lro_server.testing.databricks_sim import DatabricksSimulator, ManualClock, SimulatorThread

ROOT = Path(__file__).resolve().parents[3]


def test_control_over_http(w: WorkspaceClient, sim: SimulatorThread) -> None:
    base = f"{sim.url}/_sim"
    job_id = w.jobs.create(name="remote").job_id
    assert job_id is not None
    ok = requests.post(
        f"{base}/timelines",
        json={"kind": "runs", "timeline": "hold", "match": {"run_name": "remote"}},
        timeout=5,
    )
    assert ok.status_code == 200
    run_id = w.jobs.run_now(job_id=job_id, idempotency_token="r1").run_id
    assert requests.post(f"{base}/clock/advance", json={"seconds": 5}, timeout=5).ok
    assert w.jobs.get_run(run_id).state.life_cycle_state.value == "RUNNING"  # type: ignore[union-attr]
    finished = requests.post(
        f"{base}/runs/{run_id}/finish",
        json={"result_state": "FAILED", "state_message": "remote failure"},
        timeout=5,
    )
    assert finished.status_code == 200
    state = w.jobs.get_run(run_id).state
    assert state is not None and state.state_message == "remote failure"

    fault = requests.post(
        f"{base}/faults", json={"kind": "rate_limit", "path": "jobs/get", "times": 1}, timeout=5
    ).json()
    assert fault["fault_id"] >= 1
    w.jobs.get(job_id)
    calls = requests.get(f"{base}/calls", params={"path_contains": "jobs/get"}, timeout=5).json()
    assert calls["count"] == 2 and [c["status"] for c in calls["calls"]] == [429, 200]
    assert calls["calls"][0]["route"] == "jobs/get"
    created = requests.get(
        f"{base}/created", params={"kind": "runs", "idempotency_token": "r1"}, timeout=5
    ).json()
    assert [e["id"] for e in created["entities"]] == [str(run_id)]

    finish_any = requests.post(
        f"{base}/finish",
        json={"kind": "runs", "id": run_id, "state": "TERMINATED", "result_state": "SUCCESS"},
        timeout=5,
    )
    assert finish_any.ok
    bad = requests.post(f"{base}/timelines", json={"kind": "nope", "timeline": "x"}, timeout=5)
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    bad_fault = requests.post(f"{base}/faults", json={"kind": "explode"}, timeout=5)
    assert bad_fault.status_code == 400
    assert requests.post(f"{base}/reset", timeout=5).ok
    assert sim.calls() == 0 and sim.created() == []


def test_advance_needs_a_manual_clock() -> None:
    with SimulatorThread() as sim:
        with pytest.raises(TypeError):
            sim.advance(1)
        answer = requests.post(f"{sim.url}/_sim/clock/advance", json={"seconds": 1}, timeout=5)
        assert answer.status_code == 400


async def test_async_simulator_on_the_test_loop() -> None:
    clock = ManualClock()
    sim = DatabricksSimulator(clock=clock)
    await sim.start()
    try:
        headers = {"Authorization": "Bearer t"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.post(f"{sim.url}/api/2.2/jobs/runs/submit", json={}) as answer:
                run_id = (await answer.json())["run_id"]
            clock.advance(1)
            url = f"{sim.url}/api/2.2/jobs/runs/get?run_id={run_id}"
            async with http.get(url) as answer:
                run = await answer.json()
        assert run["state"]["result_state"] == "SUCCESS"
        # Blocking SDK calls must leave the loop that serves them, construction included:
        # WorkspaceClient() itself GETs /.well-known/databricks-config.
        w = await asyncio.to_thread(WorkspaceClient, host=sim.url, token="t", auth_type="pat")
        got = await asyncio.to_thread(w.jobs.get_run, run_id)
        assert got.run_id == run_id
        with pytest.raises(RuntimeError):
            await sim.start()  # already started
    finally:
        await sim.stop()
    await sim.stop()  # idempotent


def test_serve_forever_in_another_process_until_sigterm() -> None:
    code = (
        "from lro_server.testing.databricks_sim import serve_forever; serve_forever('127.0.0.1', 0)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:")
        requests.post(
            f"{url}/_sim/timelines", json={"kind": "runs", "timeline": "hold"}, timeout=5
        ).raise_for_status()
        headers = {"Authorization": "Bearer t"}
        run = requests.post(f"{url}/api/2.2/jobs/runs/submit", json={}, headers=headers, timeout=5)
        run_id = run.json()["run_id"]
        requests.post(f"{url}/_sim/runs/{run_id}/finish", json={}, timeout=5).raise_for_status()
        got = requests.get(
            f"{url}/api/2.2/jobs/runs/get", params={"run_id": run_id}, headers=headers, timeout=5
        ).json()
        assert got["state"]["result_state"] == "SUCCESS"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
