"""Starting work from ``lro``: run-now, submit and chain requests, from flags or JSON files.

``submit --file`` reads a SubmitRunRequest and ``chain --file`` a RunChainRequest, in proto3
JSON (the Databricks REST body's own field names, as in runs/submit). A field the message
does not have is an error, so a typo cannot start something else than what was meant.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from google.longrunning import operations_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from lro_server._proto.lro.databricks.v1 import chains_pb2, chains_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from lro_server.cli.client_rpc import CALL_TIMEOUT, Connection

M = TypeVar("M", bound=Message)
#: A generated stub's unary method.
Unary = Callable[..., Any]


class UsageError(Exception):
    """Bad command-line input: one line for stderr, exit 2."""


def parameters(pairs: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` → ``{"k": "v"}``.

    Raises:
        UsageError: An item without ``=``.
    """
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--param wants KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def load(path: str, message: M) -> M:
    """Fill ``message`` from the proto3 JSON file at ``path`` (``-``: standard input).

    Raises:
        UsageError: Unreadable file, or not a valid message of that type.
    """
    name = message.DESCRIPTOR.name
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        json_format.Parse(text, message)
    except json_format.ParseError as exc:
        detail = str(exc).split("\n", 1)[0]
        raise UsageError(f"{path} is not a {name} in proto3 JSON: {detail}") from None
    return message


def run_now(
    connection: Connection, job_id: int, params: dict[str, str], request_id: str
) -> operations_pb2.Operation:
    """Jobs.RunNow of ``job_id`` with job parameters."""
    request = jobs_pb2.RunNowRequest(job_id=job_id, job_parameters=params, request_id=request_id)
    return _call(jobs_pb2_grpc.JobsStub(connection.channel).RunNow, request, connection)


def submit(connection: Connection, path: str, request_id: str) -> operations_pb2.Operation:
    """Jobs.Submit of the SubmitRunRequest in ``path``."""
    request = load(path, jobs_pb2.SubmitRunRequest())
    if request_id:
        request.request_id = request_id
    return _call(jobs_pb2_grpc.JobsStub(connection.channel).Submit, request, connection)


def chain(connection: Connection, path: str, request_id: str) -> operations_pb2.Operation:
    """Chains.RunChain of the RunChainRequest in ``path``."""
    request = load(path, chains_pb2.RunChainRequest())
    if request_id:
        request.request_id = request_id
    return _call(chains_pb2_grpc.ChainsStub(connection.channel).RunChain, request, connection)


def _call(method: Unary, request: Message, connection: Connection) -> operations_pb2.Operation:
    answer: operations_pb2.Operation = method(
        request, timeout=CALL_TIMEOUT, metadata=connection.metadata
    )
    return answer
