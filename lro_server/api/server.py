"""The gRPC front: a grpc.aio server serving every method of the registry."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from lro_server.api.auth import NOBODY, PUBLIC_METHODS
from lro_server.api.context import CallContext
from lro_server.api.errors import as_lro_error, to_rpc_status
from lro_server.api.registry import Method, Registry
from lro_server.api.telemetry import RpcTelemetry
from lro_server.core.deadline import serving
from lro_server.core.errors import InvalidArgument
from lro_server.core.principal import ANONYMOUS, Principal

_log = logging.getLogger(__name__)

#: Authenticates a call from its metadata (raises Unauthenticated); None: auth off.
Authenticator = Callable[[dict[str, str]], Awaitable[Principal]]

#: Calls grpc.aio queues before refusing with CANCELLED; the defaults (about 1,000 soft,
#: 3,000 hard) drop bursts of held WaitOperation calls, so both limits are raised.
MAX_PENDING_REQUESTS = 100_000
#: The service whose requests name an operation (bound to the log context of the call).
OPERATIONS_SERVICE = "google.longrunning.Operations"


def _wrap(
    method: Method, authenticate: Authenticator | None, telemetry: RpcTelemetry
) -> grpc.RpcMethodHandler:
    async def handle(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        metadata = {
            k.lower(): v for k, v in context.invocation_metadata() or () if isinstance(v, str)
        }
        try:
            # Parsed here, not by grpc: its own parse failure would be UNKNOWN, without ErrorInfo.
            request = method.request_type.FromString(raw)
        except DecodeError:
            malformed = InvalidArgument(
                f"request is not a valid {method.request_type.DESCRIPTOR.full_name}",
                reason="MALFORMED_REQUEST",
            )
            await context.abort_with_status(rpc_status.to_status(to_rpc_status(malformed)))
        operation = getattr(request, "name", "") if method.service == OPERATIONS_SERVICE else ""
        deadline = serving(context.time_remaining())
        with telemetry.call("grpc", method.path, metadata, operation) as outcome, deadline:
            try:
                if method.path in PUBLIC_METHODS:
                    principal = NOBODY
                else:
                    principal = await authenticate(metadata) if authenticate else ANONYMOUS
                ctx = CallContext(
                    principal=principal, metadata=metadata, time_remaining=context.time_remaining()
                )
                return await method.handler(request, ctx)
            except Exception as exc:
                error = as_lro_error(exc, where=method.path)
                outcome.failed(error)
                await context.abort_with_status(rpc_status.to_status(to_rpc_status(error)))

    return grpc.unary_unary_rpc_method_handler(
        handle,
        response_serializer=lambda message: message.SerializeToString(),
    )


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
    names = []
    for service, methods in registry.services().items():
        handlers = {m.name: _wrap(m, authenticate, telemetry) for m in methods}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
        names.append(service)
    health_servicer = health_servicer or health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names.append(health_pb2.DESCRIPTOR.services_by_name["Health"].full_name)
    names.append(reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    return server
