"""CommandExecution.Execute end to end: gRPC API → server → simulator (manual clock)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from family_helpers import (
    SETTLE,
    assert_cancelled,
    assert_timed_out,
    calls_reach,
    future,
    manual_simulator,
    metadata_when,
    outcome,
    rest,
    running_cluster,
    seconds,
)
from google.protobuf import json_format

from lro_server._proto.lro.databricks.v1 import commands_pb2, commands_pb2_grpc
from lro_server.testing.databricks_sim import SimulatorThread


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    yield from manual_simulator()


@pytest.fixture
def commands(channel):
    return commands_pb2_grpc.CommandExecutionStub(channel)


def _future(op, operations):
    return future(op, operations, commands_pb2.CommandResult, commands_pb2.CommandMetadata)


def _execute(commands, cluster_id: str, **extra):
    request = commands_pb2.ExecuteCommandRequest(
        cluster_id=cluster_id, language="python", command="1 + 1", **extra
    )
    return commands.Execute(request)


def _until_command_sent(sim, fut) -> None:
    metadata_when(fut, lambda m: m.context_id != "", "the context")
    sim.advance(SETTLE)  # the context becomes Running
    metadata_when(fut, lambda m: m.command_id != "", "the command")


def test_success_creates_and_destroys_a_context(sim, commands, operations):
    cluster_id = running_cluster(sim)
    fut = _future(_execute(commands, cluster_id), operations)
    _until_command_sent(sim, fut)
    sim.advance(SETTLE)
    result = fut.result(timeout=30)
    assert result.status == "Finished" and result.result_type == "text"
    assert json_format.MessageToDict(result.data) == "2"
    assert fut.metadata.context_created
    assert sim.calls(path_contains="contexts/destroy") == 1


def test_success_in_a_given_context_keeps_it(sim, commands, operations):
    cluster_id = running_cluster(sim)
    body = {"clusterId": cluster_id, "language": "python"}
    context_id = rest(sim)("POST", "/api/1.2/contexts/create", body=body)["id"]
    sim.advance(SETTLE)
    sim.set_timeline("commands", "table")
    fut = _future(_execute(commands, cluster_id, context_id=context_id), operations)
    metadata_when(fut, lambda m: m.command_id != "", "the command")
    sim.advance(SETTLE)
    result = fut.result(timeout=30)
    assert result.result_type == "table" and len(result.schema) == 2
    assert sim.calls(path_contains="contexts/destroy") == 0


def test_error_result_is_a_failure_with_its_summary(sim, commands, operations):
    cluster_id = running_cluster(sim)
    sim.set_timeline("commands", "error")
    fut = _future(_execute(commands, cluster_id), operations)
    _until_command_sent(sim, fut)
    sim.advance(SETTLE)
    op = outcome(fut)
    assert (op.error.code, op.error.message) == (2, "ZeroDivisionError: division by zero")


def test_context_that_fails_to_start_fails_the_operation(sim, commands, operations):
    cluster_id = running_cluster(sim)
    sim.set_timeline("contexts", "error")
    fut = _future(_execute(commands, cluster_id), operations)
    metadata_when(fut, lambda m: m.context_id != "", "the context")
    sim.advance(SETTLE)
    op = outcome(fut)
    assert (op.error.code, op.error.message) == (14, "the execution context failed to start")


def test_cancel_cancels_the_command(sim, commands, operations):
    cluster_id = running_cluster(sim)
    sim.set_timeline("commands", "hold")
    fut = _future(_execute(commands, cluster_id), operations)
    _until_command_sent(sim, fut)
    assert fut.cancel()
    calls_reach(sim, "commands/cancel")
    sim.advance(SETTLE)
    assert_cancelled(outcome(fut))
    assert fut.metadata.status == "Cancelled"


def test_cancel_before_the_command_was_sent(sim, commands, operations):
    cluster_id = running_cluster(sim)
    fut = _future(_execute(commands, cluster_id), operations)
    metadata_when(fut, lambda m: m.context_id != "", "the context")
    assert fut.cancel()
    assert_cancelled(outcome(fut))
    assert sim.calls(path_contains="commands/execute") == 0
    assert sim.calls(path_contains="contexts/destroy") == 1


def test_timeout_cancels_the_command(sim, commands, operations):
    cluster_id = running_cluster(sim)
    sim.set_timeline("commands", "hold")
    fut = _future(_execute(commands, cluster_id, timeout=seconds(1)), operations)
    metadata_when(fut, lambda m: m.context_id != "", "the context")
    sim.advance(SETTLE)
    assert_timed_out(outcome(fut))
    assert sim.calls(path_contains="commands/cancel") == 1
