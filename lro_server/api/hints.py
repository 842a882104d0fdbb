"""lro.databricks.v1.Hints: a Databricks job or notebook asks for its operation's refresh."""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf import empty_pb2

from lro_server._proto.lro.databricks.v1 import hints_pb2
from lro_server.api.context import CallContext
from lro_server.api.registry import Method, service_methods
from lro_server.core.names import validate_operation_name
from lro_server.core.store import OperationStore


class HintsApi:
    """Refresh hints: only make the tracker look now; nothing in the call is trusted.

    Anyone who knows an operation's name (an unguessable uuid) may ask for its refresh,
    since the answer reveals nothing and the tracker re-reads Databricks itself.
    """

    def __init__(self, store: OperationStore, poke: Callable[[str], None]) -> None:
        self._store = store
        self._poke = poke

    async def Refresh(self, request: hints_pb2.RefreshRequest, ctx: CallContext) -> empty_pb2.Empty:
        """Refresh ``name`` now (NOT_FOUND when there is no such operation)."""
        name = validate_operation_name(request.name)
        record = await self._store.get(name)
        if not record.done:
            self._poke(name)
        return empty_pb2.Empty()

    def methods(self) -> list[Method]:
        """The registry entries of this service."""
        return service_methods(hints_pb2.DESCRIPTOR.services_by_name["Hints"], self)
