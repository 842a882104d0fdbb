"""A loopback stand-in for the Cloud Workflows Executions API (gRPC): records executions."""

from __future__ import annotations

import json
import queue
import uuid
from concurrent import futures
from typing import Any

import grpc
from google.cloud.workflows import executions_v1

_METHOD = "CreateExecution"
_GET = "GetExecution"
_SERVICE = "google.cloud.workflows.executions.v1.Executions"


class ExecutionsStandIn:
    """CreateExecution answers at once; each request is queued for the test to run."""

    def __init__(self) -> None:
        self.created: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.requests: list[Any] = []
        self.fail_next = 0
        #: Execution name -> state name (ACTIVE until a test says otherwise); a name
        #: missing here is deleted (NOT_FOUND).
        self.states: dict[str, str] = {}
        self.names: list[str] = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.unary_unary_rpc_method_handler(
            self._create,
            request_deserializer=executions_v1.CreateExecutionRequest.deserialize,
            response_serializer=executions_v1.Execution.serialize,
        )
        get = grpc.unary_unary_rpc_method_handler(
            self._get,
            request_deserializer=executions_v1.GetExecutionRequest.deserialize,
            response_serializer=executions_v1.Execution.serialize,
        )
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(_SERVICE, {_METHOD: handler, _GET: get}),)
        )
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _create(self, request: Any, context: grpc.ServicerContext) -> Any:
        if self.fail_next > 0:
            self.fail_next -= 1
            context.abort(grpc.StatusCode.UNAVAILABLE, "stand-in told to fail")
        self.requests.append(request)
        name = f"{request.parent}/executions/{uuid.uuid4()}"
        self.states[name] = "ACTIVE"
        self.names.append(name)
        self.created.put((request.parent, json.loads(request.execution.argument)))
        return executions_v1.Execution(name=name, argument=request.execution.argument)

    def _get(self, request: Any, context: grpc.ServicerContext) -> Any:
        state = self.states.get(request.name)
        if state is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"{request.name} not found")
        return executions_v1.Execution(
            name=request.name, state=executions_v1.Execution.State[state]
        )

    def next_argument(self, timeout: float = 20.0) -> dict[str, Any]:
        """The argument of the next execution created (waits for it)."""
        _parent, argument = self.created.get(timeout=timeout)
        return argument

    def __enter__(self) -> ExecutionsStandIn:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(None)
