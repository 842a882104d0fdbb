"""``durable.method(name)``: marks an ``async def f(ctx, request) -> dict`` as a durable method.

There is no global registry: the server imports the modules named by ``--methods`` /
``LRO_METHODS`` (and those of the ``lro_server.methods`` entry-point group) and collects
the functions marked here (:func:`methods_in`).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from lro_server.durable.context import Context

#: The attribute a marked function carries.
MARK = "__lro_durable_method__"
#: Entry-point group of installed packages that ship durable methods (value: a module).
ENTRY_POINT_GROUP = "lro_server.methods"
#: A method's name: dotted words, e.g. ``acme.NightlyTraining`` (no slash: it is not an RPC).
_NAME = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
#: Longest method name.
MAX_NAME_LENGTH = 200

MethodFunction = Callable[["Context", dict[str, Any]], Awaitable[dict[str, Any] | None]]
F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True, slots=True)
class DurableMethod:
    """A durable method: its name and its function.

    Attributes:
        name: The name clients start it by (``Methods.Start{method}``).
        function: ``async def f(ctx, request: dict) -> dict``.
        module: The module it was defined in (for messages).
    """

    name: str
    function: MethodFunction
    module: str = ""


def method(name: str) -> Callable[[F], F]:
    """Mark ``async def f(ctx: durable.Context, request: dict) -> dict`` as the durable
    method ``name``; the function itself is returned unchanged.

    Raises:
        ValueError: ``name`` is not a dotted name.
        TypeError: The function is not ``async def`` with two positional parameters.
    """
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or not _NAME.match(name):
        raise ValueError(f"durable.method: {name!r} is not a dotted name like acme.Nightly")

    def mark(function: F) -> F:
        check_signature(name, function)
        found = DurableMethod(name, function, getattr(function, "__module__", "") or "")
        setattr(function, MARK, found)
        return function

    return mark


def check_signature(name: str, function: Callable[..., Any]) -> None:
    """Raise TypeError unless ``function`` is ``async def f(ctx, request)``."""
    if not inspect.iscoroutinefunction(function):
        raise TypeError(f"durable method {name}: {function!r} must be an async def")
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError) as exc:  # pragma: no cover - builtins
        raise TypeError(f"durable method {name}: its signature cannot be read") from exc
    positional = [
        p
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if len(positional) != 2 or any(p.kind is p.VAR_POSITIONAL for p in parameters):
        raise TypeError(
            f"durable method {name}: {function.__qualname__} must take exactly (ctx, request)"
        )


def methods_in(module: ModuleType) -> list[DurableMethod]:
    """The durable methods defined in ``module``, in definition order."""
    found: list[DurableMethod] = []
    for value in vars(module).values():
        marked = getattr(value, MARK, None)
        if isinstance(marked, DurableMethod) and marked not in found:
            found.append(marked)
    return found
