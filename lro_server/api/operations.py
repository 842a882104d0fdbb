"""google.longrunning.Operations handlers: proto requests in, core service calls, protos out."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable

from google.longrunning import operations_pb2
from google.protobuf import empty_pb2

from lro_server.api.answers import SerializedOperations
from lro_server.api.context import CallContext
from lro_server.api.registry import Method, service_methods
from lro_server.core.errors import InvalidArgument
from lro_server.core.operations import OperationsService
from lro_server.core.principal import Principal

#: Seconds kept back from the RPC deadline so WaitOperation answers before it expires.
DEADLINE_MARGIN = 0.05


class OperationsApi:
    """The five methods of google.longrunning.Operations."""

    def __init__(self, service: OperationsService) -> None:
        self.service = service
        self._serialized = SerializedOperations()
        self._kept = self._serialized.get

    def answer_get(self, name: str, caller: Principal) -> bytes | None:
        """GetOperation of ``name`` answered at once, serialized, when the store holds the
        operation in memory (see ``OperationsService.get_cached``); None: await
        :meth:`GetOperation`."""
        operation = self.service.get_cached(name, caller)
        if operation is None:
            return None
        kept = self._kept(name)
        if kept is not None and kept[0] is operation:
            return kept[1]
        return self._serialized.of(name, operation)

    def GetOperation(
        self, request: operations_pb2.GetOperationRequest, ctx: CallContext
    ) -> Awaitable[operations_pb2.Operation]:
        """Latest state of an operation."""
        # The service's coroutine itself, not one awaiting it: every GetOperation passes here.
        return self.service.get(request.name, ctx.principal)

    async def ListOperations(
        self, request: operations_pb2.ListOperationsRequest, ctx: CallContext
    ) -> operations_pb2.ListOperationsResponse:
        """A page of operations matching an AIP-160 filter."""
        operations, token = await self.service.list(
            request.name, request.filter, request.page_size, request.page_token, ctx.principal
        )
        return operations_pb2.ListOperationsResponse(operations=operations, next_page_token=token)

    async def DeleteOperation(
        self, request: operations_pb2.DeleteOperationRequest, ctx: CallContext
    ) -> empty_pb2.Empty:
        """Forget an operation (its work goes on)."""
        await self.service.delete(request.name, ctx.principal)
        return empty_pb2.Empty()

    async def CancelOperation(
        self, request: operations_pb2.CancelOperationRequest, ctx: CallContext
    ) -> empty_pb2.Empty:
        """Ask for an operation's work to stop; it ends with error code CANCELLED."""
        await self.service.cancel(request.name, ctx.principal)
        return empty_pb2.Empty()

    async def WaitOperation(
        self, request: operations_pb2.WaitOperationRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """The operation once done, or its latest state at min(timeout, RPC deadline)."""
        timeout: float | None = None
        if request.HasField("timeout"):
            timeout = request.timeout.seconds + request.timeout.nanos / 1e9
            if timeout < 0:
                raise InvalidArgument("timeout must not be negative", metadata={"field": "timeout"})
        left = ctx.time_remaining
        if left is not None:
            remaining = max(0.0, left - DEADLINE_MARGIN)
            timeout = remaining if timeout is None else min(timeout, remaining)
        return await self.service.wait(request.name, timeout, ctx.principal)

    def methods(self) -> list[Method]:
        """The registry entries of this service."""
        methods = service_methods(operations_pb2.DESCRIPTOR.services_by_name["Operations"], self)
        return [
            dataclasses.replace(m, answer=self.answer_get) if m.name == "GetOperation" else m
            for m in methods
        ]
