"""Helpers of the durable-method tests: Start, futures, metadata, the Resume call."""

from __future__ import annotations

import json
from typing import Any

import grpc
import requests
from google.api_core import operation, operations_v1
from google.longrunning import operations_pb2
from google.protobuf import duration_pb2, json_format, struct_pb2

from lro_server._proto.lro.durable.v1 import methods_pb2, methods_pb2_grpc
from lro_server.resume.durable_view import integral

RESUME_PATH = "/lro.durable.v1.Methods/Resume"
RESOLVE_PATH = "/lro.durable.v1.Methods/ResolvePromise"


def start(
    channel: grpc.Channel,
    method: str,
    request: dict[str, Any],
    *,
    timeout: float | None = None,
    request_id: str = "",
) -> operations_pb2.Operation:
    """Methods.Start over gRPC."""
    message = methods_pb2.StartRequest(method=method, request_id=request_id)
    message.input.update(request)
    if timeout is not None:
        message.timeout.CopyFrom(duration_pb2.Duration(seconds=int(timeout)))
    stub = methods_pb2_grpc.MethodsStub(channel)
    answer: operations_pb2.Operation = stub.Start(message)
    return answer


def future(op: operations_pb2.Operation, operations: operations_v1.OperationsClient) -> Any:
    """google-api-core's future of a durable operation."""
    return operation.from_gapic(
        op, operations, struct_pb2.Struct, metadata_type=methods_pb2.MethodMetadata
    )


def result(op: operations_pb2.Operation, operations: operations_v1.OperationsClient) -> Any:
    """The method's returned dict (waits up to 60 s)."""
    struct = future(op, operations).result(timeout=60)
    return integral(json.loads(json_format.MessageToJson(struct)))


def metadata(op: operations_pb2.Operation) -> methods_pb2.MethodMetadata:
    """The MethodMetadata of an operation."""
    found = methods_pb2.MethodMetadata()
    op.metadata.Unpack(found)
    return found


def resume_http(base_url: str, parent: str, **headers: str) -> requests.Response:
    """The waiter's resume call through the gateway, with the seed's body."""
    sent = {"x-alis-operation-id": parent.rsplit("/", 1)[-1]}
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    return requests.post(base_url + RESUME_PATH, json={"data": {}}, headers=sent, timeout=30)


def resolve_http(
    base_url: str, promise: str, value: Any = None, **kwargs: Any
) -> requests.Response:
    """ResolvePromise through the gateway, as a notebook would (no identity)."""
    body: dict[str, Any] = {"name": promise}
    if "error" in kwargs:
        body["error"] = kwargs["error"]
    else:
        body["value"] = value
    return requests.post(base_url + RESOLVE_PATH, json=body, timeout=30)
