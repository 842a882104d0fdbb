"""What a handler knows about its call, whichever front (gRPC or HTTP) it came through."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from lro_server.core.principal import ANONYMOUS, Principal

#: Header naming the operation a waiter resumes (the seed design's contract).
RESUME_HEADER = "x-alis-operation-id"


@dataclasses.dataclass(frozen=True, slots=True)
class CallContext:
    """One call.

    Attributes:
        principal: The authenticated caller.
        metadata: Request metadata / headers, keys lower-case.
        time_remaining: Seconds until the caller's deadline, or None without one.
        operation_name: The name the started operation must get; set only by the server
            itself (a durable method's child), never from request metadata.
    """

    principal: Principal = ANONYMOUS
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)
    time_remaining: float | None = None
    operation_name: str = ""

    @property
    def resume_id(self) -> str:
        """The ``x-alis-operation-id`` header, or "" on a first call."""
        return self.metadata.get(RESUME_HEADER, "")
