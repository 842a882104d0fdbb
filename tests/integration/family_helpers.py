"""Helpers for the per-family end-to-end tests: a simulator on a manual clock, futures,
outcomes, and entities set up through Databricks' REST API."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from databricks.sdk import WorkspaceClient
from google.api_core import exceptions, operation, operations_v1
from google.longrunning import operations_pb2
from google.protobuf import duration_pb2
from google.protobuf.message import Message

from lro_server.testing.databricks_sim import ManualClock, SimulatorThread
from lro_server.testing.polling import wait_until

CLUSTER_SPEC = {"spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge", "num_workers": 1}
#: Far enough to run every phase of a simulator timeline to its end.
SETTLE = 30.0


def manual_simulator() -> Iterator[SimulatorThread]:
    """A simulator whose time only moves when a test calls ``sim.advance``."""
    with SimulatorThread(clock=ManualClock()) as simulator:
        yield simulator


def rest(sim: SimulatorThread) -> Callable[..., Any]:
    """``do(method, path, body=..., query=...)`` of the real SDK pointed at the simulator."""
    client = WorkspaceClient(host=sim.url, token="test-token", auth_type="pat")
    return client.api_client.do


def seconds(value: float) -> duration_pb2.Duration:
    """A Duration of ``value`` whole seconds."""
    return duration_pb2.Duration(seconds=int(value))


def future(
    op: operations_pb2.Operation,
    operations: operations_v1.OperationsClient,
    response: type[Message],
    metadata: type[Message],
) -> operation.Operation:
    """google-api-core's future of ``op``."""
    return operation.from_gapic(op, operations, response, metadata_type=metadata)


def outcome(fut: operation.Operation, timeout: float = 30.0) -> operations_pb2.Operation:
    """Wait for the operation to end; return it (success or error)."""
    with contextlib.suppress(exceptions.GoogleAPICallError):
        fut.result(timeout=timeout)
    return fut.operation


def metadata_when(
    fut: operation.Operation, predicate: Callable[[Any], bool], what: str, timeout: float = 20
) -> Any:
    """Refresh the future until its metadata satisfies ``predicate``; return the metadata."""

    def probe() -> Any:
        fut._refresh_and_update()
        meta = fut.metadata
        return meta if meta is not None and predicate(meta) else None

    return wait_until(probe, timeout=timeout, what=what)


def calls_reach(sim: SimulatorThread, path: str, count: int = 1) -> None:
    """Wait until the simulator answered ``count`` calls to ``path``."""
    wait_until(lambda: sim.calls(path_contains=path) >= count, timeout=20, what=path)


def running_cluster(sim: SimulatorThread, name: str = "base") -> str:
    """A RUNNING cluster created through REST."""
    answer = rest(sim)(
        "POST", "/api/2.1/clusters/create", body={**CLUSTER_SPEC, "cluster_name": name}
    )
    sim.advance(SETTLE)
    return str(answer["cluster_id"])


def terminated_cluster(sim: SimulatorThread, name: str = "stopped") -> str:
    """A TERMINATED cluster created through REST."""
    cluster_id = running_cluster(sim, name)
    rest(sim)("POST", "/api/2.1/clusters/delete", body={"cluster_id": cluster_id})
    sim.advance(SETTLE)
    return cluster_id


def assert_cancelled(op: operations_pb2.Operation) -> None:
    """The operation ended CANCELLED by CancelOperation."""
    assert op.done and op.error.code == 1, op
    assert op.error.message.startswith("operation cancelled"), op.error.message


def assert_timed_out(op: operations_pb2.Operation) -> None:
    """The operation ended DEADLINE_EXCEEDED by its own timeout."""
    assert op.done and op.error.code == 4, op
    assert "did not finish within its timeout of 1s" in op.error.message
