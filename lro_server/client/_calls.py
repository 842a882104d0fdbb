"""The google.longrunning.Operations calls both clients make: each one's path, request,
response type and deadline, and how a unary call and its errors look on the wire."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from google.api_core import exceptions
from google.longrunning import operations_pb2
from google.protobuf import duration_pb2, empty_pb2
from google.protobuf.message import Message

OPERATIONS = "/google.longrunning.Operations/"
#: Added to a WaitOperation's own timeout for its RPC deadline: the server answers first.
WAIT_SLACK_SECONDS = 10.0


@dataclass(frozen=True)
class Call:
    """One unary call, ready to be sent by either client."""

    path: str
    request: Message
    response: type[Message]
    #: The call's deadline in seconds; None: the client's ``call_timeout``.
    timeout: float | None = None


def get_operation(name: str) -> Call:
    """GetOperation of ``name``."""
    request = operations_pb2.GetOperationRequest(name=name)
    return Call(OPERATIONS + "GetOperation", request, operations_pb2.Operation)


def list_operations(filter: str, page_size: int, page_token: str) -> Call:
    """One page of ListOperations with an AIP-160 ``filter``."""
    request = operations_pb2.ListOperationsRequest(
        name="operations", filter=filter, page_size=page_size, page_token=page_token
    )
    return Call(OPERATIONS + "ListOperations", request, operations_pb2.ListOperationsResponse)


def cancel_operation(name: str) -> Call:
    """CancelOperation of ``name``."""
    request = operations_pb2.CancelOperationRequest(name=name)
    return Call(OPERATIONS + "CancelOperation", request, empty_pb2.Empty)


def delete_operation(name: str) -> Call:
    """DeleteOperation of ``name``."""
    request = operations_pb2.DeleteOperationRequest(name=name)
    return Call(OPERATIONS + "DeleteOperation", request, empty_pb2.Empty)


def wait_operation(name: str, timeout: float) -> Call:
    """WaitOperation of ``name`` for ``timeout`` seconds; the RPC deadline comes later, so
    the server answers (with the latest state) before the channel gives up."""
    request = operations_pb2.WaitOperationRequest(name=name, timeout=duration(timeout))
    return Call(
        OPERATIONS + "WaitOperation",
        request,
        operations_pb2.Operation,
        timeout=timeout + WAIT_SLACK_SECONDS,
    )


def duration(seconds: float) -> duration_pb2.Duration:
    """A Duration of ``seconds``."""
    value = duration_pb2.Duration()
    value.FromNanoseconds(int(seconds * 1e9))
    return value


def multicallable(channel: Any, path: str, request: Message, response: type[Message]) -> Any:
    """The channel's (sync or grpc.aio) unary callable of ``path``."""
    return channel.unary_unary(
        path,
        request_serializer=type(request).SerializeToString,
        response_deserializer=response.FromString,
    )


def api_error(exc: grpc.RpcError) -> exceptions.GoogleAPICallError:
    """The google-api-core exception of a failed call (``NotFound``, ...)."""
    error: exceptions.GoogleAPICallError
    error = exceptions.from_grpc_error(exc)  # type: ignore[no-untyped-call]
    return error
