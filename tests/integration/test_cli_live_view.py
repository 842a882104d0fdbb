"""`lro run-now`, `submit` and `chain` against a live server and simulator, the live view read
off a real terminal screen (a pty and a terminal emulator): progress from tasks, a failed run,
a chain with a skipped step, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import fast_config
from google.longrunning import operations_pb2
from pty_terminal import Terminal

from lro_server.cli.client import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, main
from lro_server.testing.databricks_sim import RunBehaviour, SimulatorThread
from lro_server.testing.databricks_sim.behaviour import FIRST_TASK_ERROR
from lro_server.testing.polling import wait_until
from lro_server.testing.server_thread import ServerThread

LRO = [sys.executable, "-m", "lro_server.cli.client"]
NAME = re.compile(r"operations/[0-9a-f-]{36}")
#: Each task of the demo job (ingest, then features and quality, then train) runs this long.
TASK_SECONDS = 1.0


@pytest.fixture
def demo_sim() -> Iterator[SimulatorThread]:
    """A simulator as `lro-server simulate-databricks` starts it: demo job 1, timed tasks."""
    with SimulatorThread(behaviour=RunBehaviour(run_seconds=TASK_SECONDS), demo_job=True) as sim:
        yield sim


@pytest.fixture
def demo_server(demo_sim: SimulatorThread, store_url: str) -> Iterator[ServerThread]:
    with ServerThread(fast_config(store_url, demo_sim.url)) as server:
        yield server


def _terminal(server: ServerThread, *args: str) -> Terminal:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LRO_")}
    return Terminal([*LRO, *args, "--server", server.grpc_target], env)


def _create_job(sim: SimulatorThread, name: str) -> int:
    import requests

    answer = requests.post(
        f"{sim.url}/api/2.2/jobs/create",
        json={"name": name, "tasks": [{"task_key": "main"}]},
        headers={"Authorization": "Bearer t"},
        timeout=10,
    )
    return int(answer.json()["job_id"])


def test_run_now_wait_shows_progress_from_tasks(demo_server):
    terminal = _terminal(demo_server, "run-now", "1", "--wait", "--interval", "0.2")
    try:
        midway = terminal.until(
            lambda s: "tasks 1/4 done" in s, what="progress after the first task"
        )
        assert "25%" in midway and "RUNNING" in midway
        assert re.search(r"elapsed\s+\d+s", midway)
        assert terminal.finish() == EXIT_OK
    finally:
        terminal.close()
    screen = terminal.text
    assert NAME.match(screen.splitlines()[0])  # the operation's name first
    assert "tasks 4/4 done" in screen and "100%" in screen
    assert screen.rstrip().endswith("succeeded")
    for task in ("ingest", "features", "quality", "train"):
        assert re.search(rf"{task}\s+│\s+TERMINATED/SUCCESS", screen), task
    # Elapsed counts from the operation's creation: at least the run's four seconds.
    elapsed = int(re.search(r"elapsed\s+(\d+)s", screen).group(1))  # type: ignore[union-attr]
    assert elapsed >= 3 * TASK_SECONDS


def test_a_failed_run_shows_its_error_once_and_no_full_bar(demo_sim, demo_server):
    demo_sim.set_timeline(
        "runs",
        [
            {"state": "PENDING", "seconds": 0.1},
            {"state": "RUNNING", "seconds": TASK_SECONDS},
            {
                "state": "TERMINATED",
                "result_state": "FAILED",
                "state_message": "Workload failed, see run output for details",
                "task_message": FIRST_TASK_ERROR,
            },
        ],
        job_id=1,
    )
    terminal = _terminal(demo_server, "run-now", "1", "--wait", "--interval", "0.2")
    assert terminal.finish() == EXIT_FAILED
    screen = terminal.text
    outcome = f"failed: UNKNOWN: task ingest failed: {FIRST_TASK_ERROR}"
    flat = " ".join(screen.split())
    assert flat.count(" ".join(outcome.split())) == 1  # in the view, and not again on stderr
    assert "tasks 0/4 done, task ingest failed, 3 skipped" in screen
    assert re.search(r"features\s+│\s+TERMINATED/UPSTREAM_FAILED", screen)
    assert not any("100%" in frame for frame in terminal.screens)
    assert "succeeded" not in screen


def test_a_chain_shows_its_steps_and_the_skipped_one(demo_sim, demo_server, tmp_path: Path):
    ok, bad, never = (_create_job(demo_sim, n) for n in ("prepare", "train", "report"))
    demo_sim.set_timeline("runs", "failed", job_id=bad)
    chain = tmp_path / "chain.json"
    chain.write_text(
        json.dumps(
            {
                "steps": [
                    {"name": "prepare", "run_now": {"job_id": ok}},
                    {"name": "train", "run_now": {"job_id": bad}},
                    {"name": "report", "run_now": {"job_id": never}},
                ]
            }
        )
    )
    terminal = _terminal(demo_server, "chain", "--file", str(chain), "--wait", "--interval", "0.2")
    assert terminal.finish() == EXIT_FAILED
    screen = terminal.text
    assert "steps 1/3 done, step 2 failed, 1 skipped" in screen
    assert re.search(r"prepare\s+│\s+SUCCEEDED", screen)
    assert re.search(r"train\s+│\s+FAILED", screen)
    assert re.search(r"report\s+│\s+SKIPPED", screen)
    assert screen.count('failed: UNKNOWN: step 2 "train" failed') == 1


def test_ctrl_c_says_the_work_goes_on_and_how_to_cancel(demo_sim, demo_server, operations_of):
    demo_sim.set_timeline("runs", "hold", job_id=1)
    terminal = _terminal(demo_server, "run-now", "1", "--wait", "--interval", "0.2")
    try:
        screen = terminal.until(lambda s: "RUNNING" in s, what="the running run")
        name = NAME.search(screen).group(0)  # type: ignore[union-attr]
        terminal.ctrl_c()
        assert terminal.finish() == EXIT_INTERRUPTED
    finally:
        terminal.close()
    said = f"lro: stopped following {name}; the work goes on. Cancel it with: lro cancel {name}"
    assert "".join(said.split()) in "".join(terminal.text.split())  # the line wraps on screen
    assert not operations_of(demo_server).get_operation(name).done


@pytest.fixture
def operations_of():  # type: ignore[no-untyped-def]
    import grpc
    from google.api_core import operations_v1

    channels: list[grpc.Channel] = []

    def make(server: ServerThread) -> operations_v1.OperationsClient:
        channels.append(grpc.insecure_channel(server.grpc_target))
        return operations_v1.OperationsClient(channels[-1])

    yield make
    for channel in channels:
        channel.close()


def test_quiet_prints_only_the_outcome(demo_server, capsys):
    args = ["run-now", "1", "--wait", "--quiet", "--interval", "0.2"]
    assert main([*args, "--server", demo_server.grpc_target]) == EXIT_OK
    assert capsys.readouterr().out.splitlines() == ["succeeded"]


def test_run_now_prints_the_name_and_takes_parameters(demo_sim, demo_server, capsys):
    args = ["run-now", "1", "--param", "day=2026-12-01", "--param", "mode=full"]
    assert main([*args, "--server", demo_server.grpc_target]) == EXIT_OK
    (name,) = capsys.readouterr().out.split()
    assert NAME.fullmatch(name)
    run = wait_until(lambda: demo_sim.created("runs"), what="the run")[0]
    assert run.attrs["job_id"] == 1
    assert main(["wait", name, "--quiet", "--server", demo_server.grpc_target]) == EXIT_OK


def test_submit_a_run_from_a_file(demo_server, tmp_path: Path, capsys):
    run = tmp_path / "run.json"
    run.write_text(
        json.dumps(
            {
                "run_name": "adhoc",
                "tasks": [
                    {"task_key": "extract", "notebook_task": {"notebook_path": "/x"}},
                    {"task_key": "load", "depends_on": [{"task_key": "extract"}]},
                ],
            }
        )
    )
    args = ["submit", "--file", str(run), "--wait", "--interval", "0.2", "--json"]
    assert main([*args, "--server", demo_server.grpc_target]) == EXIT_OK
    body = json.loads(capsys.readouterr().out)
    assert body["done"] is True
    assert [t["taskKey"] for t in body["response"]["tasks"]] == ["extract", "load"]


def test_a_file_with_an_unknown_field_is_a_usage_error(demo_sim, demo_server, tmp_path, capsys):
    run = tmp_path / "run.json"
    run.write_text('{"runname": "typo", "tasks": [{"task_key": "a"}]}')
    args = ["submit", "--file", str(run), "--server", demo_server.grpc_target]
    assert main(args) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"lro: {run} is not a SubmitRunRequest")
    assert '"runname"' in err[0]
    assert demo_sim.created("runs") == []
    assert operations_pb2.Operation  # the module is the one the CLI prints
