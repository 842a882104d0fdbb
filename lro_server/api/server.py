"""The gRPC front: a grpc.aio server serving every method of the registry."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import grpc
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2
from grpc_status import rpc_status

from lro_server.api.answers import RequestNames
from lro_server.api.auth import NOBODY, PUBLIC_METHODS
from lro_server.api.context import CallContext
from lro_server.api.errors import as_lro_error, to_rpc_status
from lro_server.api.registry import Method, Registry
from lro_server.api.telemetry import RpcTelemetry, code_of
from lro_server.core import callscope
from lro_server.core.callscope import CallScope
from lro_server.core.errors import InvalidArgument
from lro_server.core.principal import ANONYMOUS, Principal

_log = logging.getLogger(__name__)

#: Authenticates a call from its metadata (raises Unauthenticated); None: auth off.
Authenticator = Callable[[dict[str, str]], Awaitable[Principal]]

#: Calls grpc.aio queues before refusing with CANCELLED; the defaults (about 1,000 soft,
#: 3,000 hard) drop bursts of held WaitOperation calls, so both limits are raised.
MAX_PENDING_REQUESTS = 100_000
#: Looked up once, not on every call (each is asked once or twice per call).
_current_task = asyncio.current_task
_current_scope = callscope.current
_enter = callscope.enter
_leave = callscope.leave
#: The service whose requests name an operation (bound to the log context of the call).
OPERATIONS_SERVICE = "google.longrunning.Operations"
#: The standard gRPC health service.
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


class _GrpcScope(CallScope):
    """The scope of one gRPC call, entered when grpc.aio looks the method up (in the task
    that then runs the call) with the metadata grpc.aio converted for that lookup:
    ``context.invocation_metadata()`` would convert the same metadata again, as costly as
    the log context and metrics together (docs/performance.md). The handler fills in the
    rest before any code of the call runs, and leaves the scope (``entered``) as the call
    ends: the scope refers to the task whose context holds it, a cycle only the garbage
    collector could break otherwise."""

    __slots__ = ("entered", "pairs")

    def __init__(self, pairs: Any, task: asyncio.Task[Any] | None) -> None:
        # Not through CallScope.__init__: one call fewer, on every call.
        self.operation = ""
        self.trace = None
        self.serving = True
        self.deadline = None
        self.task = task
        self.pairs = pairs
        self.entered = _enter(self)


class _Methods(grpc.GenericRpcHandler):  # type: ignore[misc]  # grpc ships no types
    """Every method of the registry in one table (one lookup per call, whatever the
    service), entering each call's scope as it looks the call up (see ``_GrpcScope``)."""

    def __init__(self, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self._handlers = handlers
        self._loop: asyncio.AbstractEventLoop | None = None  # the server's, at the first call

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = self._handlers.get(handler_call_details.method)
        if handler is not None:
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            task = _current_task(self._loop)
            _GrpcScope(handler_call_details.invocation_metadata, task)
        return handler


async def _abort_malformed(context: grpc.aio.ServicerContext, method: Method) -> NoReturn:
    """End the call with INVALID_ARGUMENT: its request does not parse."""
    malformed = InvalidArgument(
        f"request is not a valid {method.request_type.DESCRIPTOR.full_name}",
        reason="MALFORMED_REQUEST",
    )
    await context.abort_with_status(rpc_status.to_status(to_rpc_status(malformed)))
    raise AssertionError("abort_with_status returned")  # it raises


def _wrap(  # noqa: PLR0915  the per-call coroutine inline: a helper is a call per RPC
    method: Method, authenticate: Authenticator | None, telemetry: RpcTelemetry
) -> grpc.RpcMethodHandler:
    """One coroutine per call of ``method``, built once: everything a call needs that does
    not depend on the call (its probe, parser, principal without auth) is resolved here."""
    parse = method.request_type.FromString
    handler = method.handler
    answer = method.answer
    if answer is not None and method.service != OPERATIONS_SERVICE:
        raise ValueError(f"{method.path}: only a request naming an operation is answered so")
    # A method answered from memory needs its request's name only (parsed if not at hand).
    names = RequestNames() if answer is not None else None
    known = names.get if names is not None else None
    probe = telemetry.probe("grpc", method.path)
    names_operation = method.service == OPERATIONS_SERVICE
    if method.path in PUBLIC_METHODS:
        authenticate, fixed = None, NOBODY
    else:
        fixed = ANONYMOUS
    loop: asyncio.AbstractEventLoop | None = None  # the server's, known at the first call

    async def handle(raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        nonlocal loop
        if loop is None:
            loop = asyncio.get_running_loop()
        task = _current_task(loop)
        scope: _GrpcScope = _current_scope()  # type: ignore[assignment]  # checked:
        if scope.__class__ is not _GrpcScope or scope.task is not task:
            # Not looked up in this task (whatever grpc does): this call's own scope.
            scope = _GrpcScope(context.invocation_metadata(), task)
        # gRPC metadata keys are lower-case already (HTTP/2 header names); binary
        # ("-bin") values are bytes and left out.
        metadata = {k: v for k, v in scope.pairs or () if v.__class__ is str}
        request: Message | None = None
        operation = known(raw) if known is not None else None
        if operation is None:
            try:
                # Parsed here, not by grpc: its failure would be UNKNOWN, without ErrorInfo.
                request = parse(raw)
            except DecodeError:
                await _abort_malformed(context, method)
            operation = request.name if names_operation else ""  # type: ignore[attr-defined]
            if names is not None:
                names.keep(raw, operation)
        scope.operation = operation
        # Outbound calls made for this one (Databricks) end within its deadline.
        remaining = scope.deadline = context.time_remaining
        opened = probe.open(scope, metadata)
        code: str = "OK"
        escaped: BaseException | None = None
        try:
            principal = fixed if authenticate is None else await authenticate(metadata)
            if answer is not None:
                data = answer(operation, principal)
                if data is not None:
                    return data
                if request is None:  # its name was known: parsed before, it parses
                    request = parse(raw)
            # Serialized here and handed to grpc as bytes: no serializer call per RPC.
            response = await handler(request, CallContext(principal, metadata, remaining))
            return response.SerializeToString()
        except Exception as exc:
            error = as_lro_error(exc, where=method.path)
            code, escaped = error.code.name, error
            await context.abort_with_status(rpc_status.to_status(to_rpc_status(error)))
            raise  # not reached: abort_with_status raises
        except BaseException as exc:  # cancelled: the client left or the server stops
            code, escaped = code_of(exc), exc
            raise
        finally:
            _leave(scope.entered)
            probe.close(opened, code, escaped)

    return grpc.unary_unary_rpc_method_handler(handle)


def _health_handler(servicer: health.aio.HealthServicer) -> grpc.GenericRpcHandler:
    """The standard health service as a generic handler only.

    ``add_HealthServicer_to_server`` also registers it as "registered methods"; with those
    present every other call of the server costs ~18,000 more instructions (callgrind, see
    docs/performance.md), so the health service is served the way our own services are.
    """
    handlers = {
        "Check": grpc.unary_unary_rpc_method_handler(
            servicer.Check,
            request_deserializer=health_pb2.HealthCheckRequest.FromString,
            response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
        ),
        "Watch": grpc.unary_stream_rpc_method_handler(
            servicer.Watch,
            request_deserializer=health_pb2.HealthCheckRequest.FromString,
            response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
        ),
    }
    return grpc.method_handlers_generic_handler(HEALTH_SERVICE, handlers)


def _reflection_handler(names: list[str]) -> grpc.GenericRpcHandler:
    """Server reflection as a generic handler only: ``enable_server_reflection`` also
    registers it as "registered methods", which costs every other call of the server a
    second task to wait on (see ``_health_handler``)."""
    servicer = reflection.aio.ReflectionServicer(names)
    handlers = {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        ),
    }
    return grpc.method_handlers_generic_handler(reflection.SERVICE_NAME, handlers)


def build_server(
    registry: Registry,
    *,
    authenticate: Authenticator | None = None,
    max_request_bytes: int = 4 * 1024 * 1024,
    health_servicer: health.aio.HealthServicer | None = None,
    telemetry: RpcTelemetry | None = None,
) -> grpc.aio.Server:
    """A grpc.aio server with the registry's services, health and reflection (not started)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_request_bytes),
            ("grpc.server.max_pending_requests", MAX_PENDING_REQUESTS),
            ("grpc.server.max_pending_requests_hard_limit", MAX_PENDING_REQUESTS),
            ("grpc.so_reuseport", 0),
        ]
    )
    telemetry = telemetry or RpcTelemetry()
    names = list(registry.services())
    handlers = {m.path: _wrap(m, authenticate, telemetry) for m in registry.methods()}
    server.add_generic_rpc_handlers((_Methods(handlers),))
    health_servicer = health_servicer or health.aio.HealthServicer()
    server.add_generic_rpc_handlers((_health_handler(health_servicer),))
    names.append(HEALTH_SERVICE)
    names.append(reflection.SERVICE_NAME)
    server.add_generic_rpc_handlers((_reflection_handler(names),))
    return server
