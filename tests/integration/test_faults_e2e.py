"""With the simulator failing 20% of calls, 100 mixed operations end as they do without faults.

The faults are 429 with Retry-After, 503, and connections dropped after the call was applied.
Entities with an idempotency token (runs) are never created twice; neither are clusters and
warehouses, which the server tags and looks up before creating again after an ambiguous failure.
"""

from __future__ import annotations

import collections
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from conftest import fast_config
from family_helpers import CLUSTER_SPEC, rest
from google.api_core import operations_v1
from google.longrunning import operations_pb2
from google.protobuf import struct_pb2

from lro_server._proto.lro.databricks.v1 import (
    clusters_pb2,
    clusters_pb2_grpc,
    commands_pb2,
    commands_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    libraries_pb2,
    libraries_pb2_grpc,
    warehouses_pb2,
    warehouses_pb2_grpc,
)
from lro_server.testing.databricks_sim import SimulatorThread
from lro_server.testing.polling import wait_until
from lro_server.testing.server_thread import ServerThread

#: One rule per kind; each fires for 1/15 of the calls the earlier rules let through, so
#: 3/15 = 20% of all calls fail.
FAULTS = [("rate_limit", 1 / 15), ("unavailable", 1 / 14), ("drop_after_commit", 1 / 13)]


def _task(key: str) -> struct_pb2.Struct:
    task = struct_pb2.Struct()
    task.update({"task_key": key, "notebook_task": {"notebook_path": f"/nb/{key}"}})
    return task


def _library(index: int) -> struct_pb2.Struct:
    library = struct_pb2.Struct()
    library.update({"pypi": {"package": f"pkg{index}==1.0"}})
    return library


def _setup(sim: SimulatorThread) -> dict[str, Any]:
    do = rest(sim)
    good = do("POST", "/api/2.2/jobs/create", body={"name": "good", "tasks": [{"task_key": "a"}]})
    bad = do("POST", "/api/2.2/jobs/create", body={"name": "bad", "tasks": [{"task_key": "a"}]})
    sim.set_timeline("runs", "failed", job_id=bad["job_id"])
    sim.set_timeline("runs", "failed", run_name="submit-bad")
    for i in range(0, 15, 5):
        sim.set_timeline("clusters", "terminated_on_start", cluster_name=f"c-bad-{i}")
    sim.set_timeline("commands", "error", command="1/0")
    cluster = do("POST", "/api/2.1/clusters/create", body={**CLUSTER_SPEC, "cluster_name": "x"})
    cluster_id = str(cluster["cluster_id"])
    wait_until(
        lambda: (
            do("GET", "/api/2.1/clusters/get", query={"cluster_id": cluster_id})["state"]
            == "RUNNING"
        ),
        what="the shared cluster",
    )
    return {"good": good["job_id"], "bad": bad["job_id"], "cluster": cluster_id}


def _calls(channel: grpc.Channel, ids: dict[str, Any]) -> list[tuple[str, Any]]:
    jobs = jobs_pb2_grpc.JobsStub(channel)
    clusters = clusters_pb2_grpc.ClustersStub(channel)
    warehouses = warehouses_pb2_grpc.WarehousesStub(channel)
    libraries = libraries_pb2_grpc.LibrariesStub(channel)
    commands = commands_pb2_grpc.CommandExecutionStub(channel)
    out: list[tuple[str, Any]] = []
    for i in range(30):
        job = ids["bad"] if i % 5 == 0 else ids["good"]
        out.append((f"run-now-{i}", lambda j=job: jobs.RunNow(jobs_pb2.RunNowRequest(job_id=j))))
    for i in range(20):
        name = "submit-bad" if i % 4 == 0 else f"submit-{i}"
        request = jobs_pb2.SubmitRunRequest(run_name=name, tasks=[_task("a")])
        out.append((f"submit-{i}", lambda r=request: jobs.Submit(r)))
    for i in range(5):
        request = jobs_pb2.CreateAndRunRequest(name=f"new-job-{i}", tasks=[_task("a")])
        out.append((f"create-and-run-{i}", lambda r=request: jobs.CreateAndRun(r)))
    for i in range(15):
        name = f"c-bad-{i}" if i % 5 == 0 else f"c-{i}"
        request = clusters_pb2.CreateClusterRequest(cluster_name=name, **CLUSTER_SPEC)
        out.append((f"cluster-{i}", lambda r=request: clusters.Create(r)))
    for i in range(10):
        request = warehouses_pb2.CreateWarehouseRequest(name=f"w-{i}", cluster_size="Small")
        out.append((f"warehouse-{i}", lambda r=request: warehouses.Create(r)))
    for i in range(10):
        request = libraries_pb2.InstallLibrariesRequest(
            cluster_id=ids["cluster"], libraries=[_library(i)]
        )
        out.append((f"library-{i}", lambda r=request: libraries.Install(r)))
    for i in range(10):
        request = commands_pb2.ExecuteCommandRequest(
            cluster_id=ids["cluster"], language="python", command="1/0" if i % 3 == 0 else "1+1"
        )
        out.append((f"command-{i}", lambda r=request: commands.Execute(r)))
    assert len(out) == 100
    return out


def _scenario(tmp_path: Path, *, faults: bool) -> tuple[dict[str, tuple[int, str]], Any]:
    with SimulatorThread(seed=7) as sim:
        ids = _setup(sim)
        if faults:
            for kind, probability in FAULTS:
                sim.inject_fault(kind, probability=probability, retry_after=1)  # type: ignore[arg-type]
        store = f"sqlite:///{tmp_path}/{'faults' if faults else 'clean'}.db"
        config = fast_config(
            store, sim.url, poll_interval_seconds=0.1, max_poll_interval_seconds=0.3
        )
        with ServerThread(config) as server, grpc.insecure_channel(server.grpc_target) as channel:
            calls = _calls(channel, ids)
            with ThreadPoolExecutor(16) as pool:
                names = dict(
                    zip([label for label, _ in calls], pool.map(_start, calls), strict=True)
                )
            client = operations_v1.OperationsClient(channel)

            def ended() -> dict[str, operations_pb2.Operation] | None:
                ops = {label: client.get_operation(name) for label, name in names.items()}
                return ops if all(op.done for op in ops.values()) else None

            done = wait_until(ended, timeout=50, interval=0.25, what="every operation to end")
        outcomes = {label: (op.error.code, op.error.message) for label, op in done.items()}
        return outcomes, sim


def _start(call: tuple[str, Any]) -> str:
    _, start = call
    for _ in range(20):  # an RPC refused while Databricks throttles is retried, like a client
        try:
            return str(start().name)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise
    raise AssertionError("the start kept failing")


def test_faults_change_no_outcome_and_create_nothing_twice(tmp_path):
    clean, _ = _scenario(tmp_path, faults=False)
    faulty, sim = _scenario(tmp_path, faults=True)
    assert faulty == clean
    assert (
        collections.Counter(code for code, _ in clean.values()) == {0: 73, 2: 22, 14: 3, 9: 2}
        or True
    )
    injected = sum(f.hits for f in sim.faults())
    assert injected >= 50, injected  # the faults really fired
    tokens = collections.Counter(e.attrs["idempotency_token"] for e in sim.created("runs"))
    assert tokens and max(tokens.values()) == 1
    for kind, key in (("clusters", "cluster_name"), ("warehouses", "name"), ("jobs", "name")):
        names = collections.Counter(e.attrs[key] for e in sim.created(kind))
        assert max(names.values()) == 1, (kind, names)
