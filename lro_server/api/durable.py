"""lro.durable.v1.Methods handlers: Start a durable method, ResolvePromise, Resume; and the
starting of a durable method's children through the server's own methods.

Start validates the request and creates the operation; the engine
(:mod:`lro_server.resume.durable_engine`) runs the method in the background. Children
(``ctx.call``) go through the registry, exactly as if a client had called the method:
the request dict is parsed into the method's request type (snake_case or lowerCamelCase;
unknown fields are INVALID_ARGUMENT), stamped with the engine's request id, and started
as the parent's owner with the name the engine gave it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from google.longrunning import operations_pb2
from google.protobuf import json_format

from lro_server._proto.lro.durable.v1 import methods_pb2
from lro_server.api.context import CallContext
from lro_server.api.registry import Method, Registry, service_methods
from lro_server.api.requests import json_value, require, start_timeout, struct_json
from lro_server.api.resuming import resume_call
from lro_server.core.errors import InvalidArgument, NotFound
from lro_server.core.operations import OperationsService
from lro_server.core.principal import Principal
from lro_server.durable.method import DurableMethod
from lro_server.resume.durable_engine import (
    RESUME_METHOD,
    SERVICE,
    START_METHOD,
    DurableEngine,
)
from lro_server.resume.durable_payload import FAMILY, Payload
from lro_server.resume.engine import Resumer

#: Default timeout of a durable method.
DEFAULT_TIMEOUT_SECONDS = 24 * 3600.0
#: Most labels on one operation, and their sizes.
MAX_LABELS, MAX_LABEL_KEY, MAX_LABEL_VALUE = 64, 63, 256
#: Methods a durable method may not call as children: they start no operation of their own.
_NOT_CHILDREN = frozenset({"google.longrunning.Operations"})
_NOT_CHILD_METHODS = frozenset({f"/{RESUME_METHOD}", f"/{SERVICE}/ResolvePromise"})


class DurableApi:
    """The Methods service and the child starter of durable methods.

    Args:
        service: Creates the operations.
        resumer: Resumes them (the Resume method).
        engine: Runs them; resolves promises.
        methods: The loaded durable methods.
        registry: The server's methods (built after this object), for children.
    """

    def __init__(
        self,
        service: OperationsService,
        resumer: Resumer,
        engine: DurableEngine,
        methods: Mapping[str, DurableMethod],
        registry: Callable[[], Registry | None],
    ) -> None:
        self.service = service
        self.resumer = resumer
        self.engine = engine
        self.durable_methods = dict(methods)
        self._registry = registry

    async def Start(
        self, request: methods_pb2.StartRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Start a durable method."""
        require(bool(request.method), "method", "the durable method's name is required")
        if request.method not in self.durable_methods:
            raise NotFound(
                f"durable method {request.method[:200]!r} is not served here",
                reason="UNKNOWN_METHOD",
                metadata={"method": request.method[:200]},
            )
        labels = dict(request.labels)
        require(len(labels) <= MAX_LABELS, "labels", f"at most {MAX_LABELS} labels")
        for key, value in labels.items():
            require(
                0 < len(key) <= MAX_LABEL_KEY and len(value) <= MAX_LABEL_VALUE,
                f"labels[{key[:MAX_LABEL_KEY]!r}]",
                f"keys are 1 to {MAX_LABEL_KEY} characters, values at most {MAX_LABEL_VALUE}",
            )
        body = struct_json(request.input, "input")
        return await self.service.start(
            caller=ctx.principal,
            method=START_METHOD,
            family=FAMILY,
            payload=Payload(request.method, body, labels).encode(),
            timeout_seconds=start_timeout(request, DEFAULT_TIMEOUT_SECONDS),
            request_id=request.request_id,
            state="PENDING",
            name=ctx.operation_name,
        )

    async def ResolvePromise(
        self, request: methods_pb2.ResolvePromiseRequest, ctx: CallContext
    ) -> methods_pb2.Promise:
        """Resolve or reject a promise; the id is the capability (no identity needed)."""
        require(bool(request.name), "name", "the promise id is required")
        which = request.WhichOneof("result")
        require(which is not None, "result", "give a value or an error")
        if which == "error":
            require(request.error.code != 0, "error.code", "a rejection needs a non-OK code")
            rejection = (int(request.error.code), str(request.error.message)[:4000])
            return await self.engine.resolve_promise(request.name, None, rejection)
        value = json_value(request.value, "value")
        return await self.engine.resolve_promise(request.name, value, None)

    async def Resume(
        self, request: methods_pb2.ResumeRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """A waiter's resume (header ``x-alis-operation-id``; the body is ignored)."""
        require(bool(ctx.resume_id), "x-alis-operation-id", "Resume needs this header")
        return await resume_call(self.resumer, ctx, RESUME_METHOD)

    async def start_child(
        self, method: str, request: dict[str, Any], *, owner: str, request_id: str, name: str
    ) -> operations_pb2.Operation:
        """Start a child of a durable method (see the module docstring)."""
        registry = self._registry()
        path = "/" + method
        found = registry.get(path) if registry is not None else None
        if found is None:
            raise NotFound(f"method {method} is not served here", reason="UNKNOWN_METHOD")
        message = found.request_type()
        if (
            found.response_type is not operations_pb2.Operation
            or found.service in _NOT_CHILDREN
            or path in _NOT_CHILD_METHODS
            or "request_id" not in message.DESCRIPTOR.fields_by_name
        ):
            raise InvalidArgument(
                f"{method} does not start an operation", reason="NOT_A_START_METHOD"
            )
        try:
            json_format.ParseDict(request, message)
        except (json_format.ParseError, ValueError, TypeError) as exc:
            raise InvalidArgument(
                f"the request of {method} is invalid: {str(exc)[:300]}", reason="INVALID_REQUEST"
            ) from None
        setattr(message, "request_id", request_id)  # noqa: B010  every start request has one
        ctx = CallContext(principal=Principal(subject=owner), operation_name=name)
        operation: operations_pb2.Operation = await found.handler(message, ctx)
        return operation

    def methods(self) -> list[Method]:
        """The registry entries of this service."""
        return service_methods(methods_pb2.DESCRIPTOR.services_by_name["Methods"], self)
