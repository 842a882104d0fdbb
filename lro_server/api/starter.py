"""Starting an operation for a Databricks family: the one path every start method takes."""

from __future__ import annotations

from google.longrunning import operations_pb2
from google.protobuf.message import Message

from lro_server.api.context import CallContext
from lro_server.api.requests import start_args
from lro_server.core.operations import OperationsService
from lro_server.databricks.work import RepairPolicy, new_payload

#: Default operation timeouts where Databricks is slower than the 20-minute default.
MINUTES = 60.0


class Starter:
    """Turns a validated start request into an operation of one family."""

    def __init__(self, service: OperationsService, service_name: str, family: str) -> None:
        self.service = service
        self.service_name = service_name
        self.family = family

    async def start(
        self,
        method: str,
        action: str,
        request: Message,
        ctx: CallContext,
        *,
        default_timeout: float = 20 * MINUTES,
        request_id: str = "",
        repair: RepairPolicy | None = None,
    ) -> operations_pb2.Operation:
        """Create the operation of ``service_name/method`` doing ``action`` and start it.

        ``request_id`` replaces the request's own (Track methods derive theirs from the
        entity, so the same entity tracked twice is one operation); ``repair`` is the
        jobs family's repair policy.
        """
        args = start_args(request, default_timeout=default_timeout)
        return await self.service.start(
            caller=ctx.principal,
            method=f"{self.service_name}/{method}",
            family=self.family,
            payload=new_payload(action, args.body, repair=repair),
            timeout_seconds=args.timeout_seconds,
            request_id=request_id or args.request_id,
            labels=args.labels,
            name=ctx.operation_name,
        )
