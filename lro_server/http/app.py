"""The HTTP/JSON front: REST routes of google.longrunning.Operations and a gateway.

Both call the very handlers the gRPC front serves (in-process, no proxy):

- REST per the google.api.http annotations of operations.proto, plus ``:wait``:
  ``GET /v1/operations``, ``GET /v1/operations/{id}``, ``DELETE /v1/operations/{id}``,
  ``POST /v1/operations/{id}:cancel``, ``POST /v1/operations/{id}:wait``.
- Gateway ``POST /{package.Service}/{Method}`` for every unary method: proto3 JSON in and
  out, request headers passed on as call metadata. A field the request message does not
  have is INVALID_ARGUMENT, except in the body of a resume call (``x-alis-operation-id``),
  see ``lro_server.http.bodies``.

A method a path does not serve is 405 with ``Allow`` and the JSON error body.

Bodies follow the standard proto3 JSON mapping, which omits default values: a running
operation has no ``"done"`` key. Clients written for that mapping (``"done" in body``) rely
on it, so it is kept; read ``done`` with a default.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from google.longrunning import operations_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from lro_server.api.auth import NOBODY, PUBLIC_METHODS
from lro_server.api.context import RESUME_HEADER, CallContext
from lro_server.api.errors import as_lro_error
from lro_server.api.registry import Method, Registry
from lro_server.api.telemetry import MethodProbe, RpcTelemetry, code_of
from lro_server.core import callscope
from lro_server.core.callscope import CallScope
from lro_server.core.errors import InvalidArgument, LroError, NotFound, Unimplemented
from lro_server.core.logcontext import set_operation
from lro_server.core.principal import ANONYMOUS, Principal
from lro_server.http.bodies import JSON, parse_body
from lro_server.http.errors import error_body
from lro_server.http.json_cache import OperationJson

_log = logging.getLogger(__name__)

OPERATIONS = "/google.longrunning.Operations/"
#: Headers never passed on as call metadata.
_HOP_HEADERS = frozenset(
    {"host", "content-length", "connection", "content-type", "accept-encoding", "transfer-encoding"}
)

Authenticator = Callable[[dict[str, str]], Awaitable[Principal]]


class HttpFront:
    """aiohttp application over a Registry."""

    def __init__(
        self,
        registry: Registry,
        *,
        authenticate: Authenticator | None = None,
        max_request_bytes: int = 4 * 1024 * 1024,
        extra_routes: list[web.RouteDef] | None = None,
        telemetry: RpcTelemetry | None = None,
        operation_json: OperationJson | None = None,
    ) -> None:
        self.registry = registry
        #: Rendered operations reused across reads (see lro_server.http.json_cache).
        self.operation_json = operation_json if operation_json is not None else OperationJson()
        self.telemetry = telemetry or RpcTelemetry()
        self._probes: dict[str, MethodProbe] = {}
        self.authenticate = authenticate
        self.max_request_bytes = max_request_bytes
        self.app = web.Application(client_max_size=max_request_bytes, middlewares=[self._errors])
        self.app.add_routes(
            [
                web.get("/v1/operations", self._list),
                web.get(r"/v1/operations/{id:[^:]+}", self._get),
                web.delete(r"/v1/operations/{id:[^:]+}", self._delete),
                web.post(r"/v1/operations/{id:[^:]+}:cancel", self._cancel),
                web.post(r"/v1/operations/{id:[^:]+}:wait", self._wait),
                web.post(r"/{service:[A-Za-z_][\w.]*}/{method:[A-Za-z_]\w*}", self._gateway),
                *(extra_routes or []),
            ]
        )

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return _error(
                InvalidArgument(
                    f"request body is larger than the limit of {self.max_request_bytes} bytes",
                    reason="REQUEST_TOO_LARGE",
                    metadata={"limit_bytes": str(self.max_request_bytes)},
                )
            )
        except web.HTTPNotFound:
            return _error(
                NotFound(f"no route for {request.method} {request.path}", reason="NO_ROUTE")
            )
        except web.HTTPMethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.allowed_methods))
            return _error(
                Unimplemented(
                    f"{request.method} is not allowed on {request.path}; allowed: {allowed}",
                    reason="METHOD_NOT_ALLOWED",
                    metadata={"allowed_methods": allowed},
                ),
                status=405,
                headers={"Allow": allowed},
            )
        except web.HTTPException:
            raise
        except Exception as exc:
            return _error(as_lro_error(exc, where=f"HTTP {request.method} {request.path}"))

    async def _context(
        self, request: web.Request, headers: dict[str, str] | None = None, path: str = ""
    ) -> CallContext:
        if headers is None:
            headers = {k.lower(): v for k, v in request.headers.items()}
        metadata = {k: v for k, v in headers.items() if k not in _HOP_HEADERS}
        if path in PUBLIC_METHODS:
            principal = NOBODY
        else:
            principal = await self.authenticate(metadata) if self.authenticate else ANONYMOUS
        return CallContext(principal=principal, metadata=metadata)

    async def _call(self, path: str, message: Message, request: web.Request) -> web.Response:
        method = self.registry.get(path)
        if method is None:
            raise NotFound(f"method {path} is not served here", reason="UNKNOWN_METHOD")
        return await self._invoke(method, request, message)

    async def _invoke(
        self, method: Method, request: web.Request, message: Message | None = None
    ) -> web.Response:
        """Call ``method``; without ``message``, the body is parsed once the caller is known
        (an unauthenticated caller gets 401, not a lesson in the request's fields)."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        operations = path_is_operations(method.path)
        operation = getattr(message, "name", "") if operations else ""
        probe = self._probes.get(method.path)
        if probe is None:
            probe = self._probes[method.path] = self.telemetry.probe("http", method.path)
        # No deadline (HTTP has none), but outbound calls know they serve a call.
        scope = CallScope(operation, serving=True, task=asyncio.current_task())
        entered = callscope.enter(scope)
        opened = probe.open(scope, headers)
        code: str = "OK"
        escaped: BaseException | None = None
        try:
            context = await self._context(request, headers, method.path)
            if message is None:
                # A resume call's body means nothing; deployed waiters send {"data": {}}.
                resume = bool(headers.get(RESUME_HEADER))
                message = await parse_body(
                    request, method.request_type, ignore_unknown_fields=resume
                )
                if operations:
                    set_operation(getattr(message, "name", ""))
            response = await method.handler(message, context)
        except BaseException as exc:
            code, escaped = code_of(exc), exc
            raise
        finally:
            callscope.leave(entered)
            probe.close(opened, code, escaped)
        if isinstance(response, operations_pb2.Operation):
            body = self.operation_json.render(response)
        elif isinstance(response, operations_pb2.ListOperationsResponse):
            body = self.operation_json.render_page(response)
        else:
            return _json(response)
        return web.Response(body=body, content_type=JSON)

    # -- REST --------------------------------------------------------------------

    async def _get(self, request: web.Request) -> web.Response:
        message = operations_pb2.GetOperationRequest(name=_name(request))
        return await self._call(OPERATIONS + "GetOperation", message, request)

    async def _delete(self, request: web.Request) -> web.Response:
        message = operations_pb2.DeleteOperationRequest(name=_name(request))
        return await self._call(OPERATIONS + "DeleteOperation", message, request)

    async def _cancel(self, request: web.Request) -> web.Response:
        message = operations_pb2.CancelOperationRequest(name=_name(request))
        return await self._call(OPERATIONS + "CancelOperation", message, request)

    async def _wait(self, request: web.Request) -> web.Response:
        message = await parse_body(request, operations_pb2.WaitOperationRequest)
        message.name = _name(request)
        return await self._call(OPERATIONS + "WaitOperation", message, request)

    async def _list(self, request: web.Request) -> web.Response:
        query = request.query
        size_text = query.get("pageSize", query.get("page_size", "0"))
        try:
            page_size = int(size_text)
        except ValueError:
            raise InvalidArgument(
                f"page_size must be an integer, got {size_text[:40]!r}",
                metadata={"field": "page_size"},
            ) from None
        if not -(2**31) <= page_size < 2**31:
            raise InvalidArgument("page_size is out of range", metadata={"field": "page_size"})
        message = operations_pb2.ListOperationsRequest(
            name=query.get("name", "operations"),
            filter=query.get("filter", ""),
            page_size=page_size,
            page_token=query.get("pageToken", query.get("page_token", "")),
        )
        return await self._call(OPERATIONS + "ListOperations", message, request)

    # -- gateway -----------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.Response:
        path = f"/{request.match_info['service']}/{request.match_info['method']}"
        method: Method | None = self.registry.get(path)
        if method is None:
            raise NotFound(f"method {path} is not served here", reason="UNKNOWN_METHOD")
        return await self._invoke(method, request)


def path_is_operations(path: str) -> bool:
    """Whether ``path`` is a google.longrunning.Operations method (its requests name one)."""
    return path.startswith(OPERATIONS)


def _name(request: web.Request) -> str:
    return "operations/" + request.match_info["id"]


def _json(message: Message) -> web.Response:
    return web.Response(
        body=json_format.MessageToJson(message, indent=None).encode(), content_type=JSON
    )


def _error(
    error: LroError, *, status: int | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    code, body = error_body(error, status)
    return web.Response(status=code, body=body, content_type=JSON, headers=headers)


async def start_http(front: HttpFront, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve ``front`` on host:port (0: a free port); returns the runner and the bound port."""
    runner = web.AppRunner(front.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    server = site._server  # bound sockets: the only way to learn the port chosen for 0
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)


def json_dumps(value: Any) -> str:
    """Compact JSON (shared by routes that answer plain dicts)."""
    return json.dumps(value, separators=(",", ":"))
