"""The unary methods this server serves, declared once for both fronts.

Each method is a handler ``async (request, CallContext) -> response`` with its message types.
The gRPC server registers them as generic handlers; the HTTP gateway looks them up by
``/{package.Service}/{Method}``. There is no second list to keep in sync.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from lro_server.api.context import CallContext
from lro_server.core.principal import Principal

Handler = Callable[[Any, CallContext], Awaitable[Message]]
#: Answers a call about an operation (the ``name`` its request gives) at once, without
#: awaiting, when it can (the response serialized); else None, and the front awaits the
#: handler. Takes the name the front read for the call's log context: one read of it.
Answer = Callable[[str, Principal], bytes | None]


@dataclasses.dataclass(frozen=True, slots=True)
class Method:
    """One unary RPC.

    Attributes:
        service: Full service name, e.g. ``google.longrunning.Operations``.
        name: Method name, e.g. ``GetOperation``.
        request_type: Request message class.
        response_type: Response message class.
        handler: The implementation.
        answer: What the gRPC front asks first, if set (see ``Answer``; only for a method
            whose request names an operation): GetOperation of an operation the store
            holds in memory.
    """

    service: str
    name: str
    request_type: type[Message]
    response_type: type[Message]
    handler: Handler
    answer: Answer | None = None

    @property
    def path(self) -> str:
        """gRPC path ``/service/Method``."""
        return f"/{self.service}/{self.name}"


class Registry:
    """All methods served, by path."""

    def __init__(self, methods: Iterable[Method] = ()) -> None:
        self._methods: dict[str, Method] = {}
        for method in methods:
            self.add(method)

    def add(self, method: Method) -> None:
        """Serve ``method``."""
        if method.path in self._methods:
            raise ValueError(f"{method.path} registered twice")
        self._methods[method.path] = method

    def get(self, path: str) -> Method | None:
        """The method at ``/service/Method``, or None."""
        return self._methods.get(path)

    def methods(self) -> list[Method]:
        """Every method, in the order they were added."""
        return list(self._methods.values())

    def services(self) -> dict[str, list[Method]]:
        """Methods grouped by service name."""
        grouped: dict[str, list[Method]] = {}
        for method in self._methods.values():
            grouped.setdefault(method.service, []).append(method)
        return grouped


def service_methods(service_descriptor: Any, implementation: object) -> list[Method]:
    """Methods of a proto service whose implementation has a coroutine per method name."""
    methods = []
    for method in service_descriptor.methods:
        methods.append(
            Method(
                service=service_descriptor.full_name,
                name=method.name,
                request_type=GetMessageClass(method.input_type),
                response_type=GetMessageClass(method.output_type),
                handler=getattr(implementation, method.name),
            )
        )
    return methods
