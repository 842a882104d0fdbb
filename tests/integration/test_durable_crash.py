"""kill -9 of ``lro-server serve --methods …`` while durable methods sleep, then a restart on
the same store: every method wakes and finishes, and no recorded step runs twice. Also:
methods that cannot be loaded stop the server with one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from durable_helpers import metadata, result, start
from google.api_core import operations_v1
from reliability import ROOT, ServerProcess

from lro_server.testing.databricks_sim import SimulatorThread
from lro_server.testing.polling import wait_until

pytestmark = pytest.mark.xdist_group("crash")

METHODS = 5
ENV = {
    "LRO_METHODS": "durable_methods",
    "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests" / "integration")]),
}


def test_kill_9_during_a_durable_sleep_then_restart(tmp_path: Path, figures):
    store = f"sqlite:///{tmp_path}/lro.db"
    logs = [tmp_path / f"method-{i}.log" for i in range(METHODS)]
    with SimulatorThread() as sim:
        first = ServerProcess(store, sim.url, ENV, tmp_path / "first.log").start()
        try:
            with grpc.insecure_channel(first.grpc_target) as channel:
                ops = operations_v1.OperationsClient(channel)
                names = [
                    start(channel, "test.Sleeper", {"log": str(log), "seconds": 3}).name
                    for log in logs
                ]
                for name in names:
                    wait_until(
                        lambda n=name: metadata(ops.get_operation(n)).waiting_on,
                        timeout=20,
                        what="the method to sleep",
                    )
            first.kill()
        finally:
            first.kill()
        assert [log.read_text() for log in logs] == ["before\n"] * METHODS

        second = ServerProcess(store, sim.url, ENV, tmp_path / "second.log").start()
        try:
            with grpc.insecure_channel(second.grpc_target) as channel:
                ops = operations_v1.OperationsClient(channel)
                answers = [result(ops.get_operation(name), ops) for name in names]
        finally:
            assert second.terminate() == 0, second.output()
    assert answers == [{"slept": 3}] * METHODS
    assert [log.read_text() for log in logs] == ["before\nafter\n"] * METHODS
    figures(methods=METHODS, steps_run_twice=0)


@pytest.mark.parametrize(
    ("modules", "says"),
    [
        ("no_such_module_here", "no_such_module_here: cannot be imported: ModuleNotFoundError"),
        ("json", "json: defines no method marked with @durable.method"),
        ("durable_methods,durable_methods_twice", "is defined twice"),
    ],
)
def test_methods_that_cannot_be_loaded_stop_the_server_with_one_line(
    tmp_path: Path, modules: str, says: str
):
    twice = tmp_path / "durable_methods_twice.py"
    twice.write_text(
        "from lro_server import durable\n\n"
        '@durable.method("test.FanOut")\n'
        "async def again(ctx, request):\n    return {}\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests" / "integration")]),
    }
    answer = subprocess.run(
        [
            sys.executable,
            "-m",
            "lro_server.cli.server",
            "serve",
            "--methods",
            modules,
            "--store",
            f"sqlite:///{tmp_path}/lro.db",
            "--grpc-port",
            "0",
            "--http-port",
            "0",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert answer.returncode != 0
    lines = answer.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in answer.stderr, answer.stderr
