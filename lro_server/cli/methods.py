"""Loading users' durable methods: ``--methods``/``LRO_METHODS`` modules and entry points.

``lro-server serve --methods pkg.module[,other.module]`` imports each module (the working
directory is on the import path, as for ``python -m``) and collects the functions marked
with ``durable.method``; installed packages add theirs through the entry-point group
``lro_server.methods`` (each entry names a module, or a marked function). Anything wrong
(a module that cannot be imported, a bad signature, two methods with one name, a module
without methods) stops the server with one line naming the module and the problem.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from types import ModuleType

from lro_server.durable.method import ENTRY_POINT_GROUP, MARK, DurableMethod, methods_in


class MethodsError(Exception):
    """Durable methods could not be loaded; the message is one line for the operator."""


def load_methods(modules: str, *, entry_points: bool = True) -> list[DurableMethod]:
    """The durable methods of ``modules`` (comma-separated) and of the entry points.

    Raises:
        MethodsError: What went wrong, in one line naming the module.
    """
    found: dict[str, DurableMethod] = {}
    names = [name.strip() for name in modules.split(",") if name.strip()]
    if names and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in names:
        module = _import(name)
        methods = methods_in(module)
        if not methods:
            raise MethodsError(f"{name}: defines no method marked with @durable.method")
        for method in methods:
            _add(found, method, name)
    if entry_points:
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                loaded = entry.load()
            except Exception as exc:
                raise MethodsError(f"{entry.value}: cannot be imported: {_why(exc)}") from None
            if isinstance(loaded, ModuleType):
                for method in methods_in(loaded):
                    _add(found, method, entry.value)
            elif isinstance(getattr(loaded, MARK, None), DurableMethod):
                _add(found, getattr(loaded, MARK), entry.value)
            else:
                raise MethodsError(f"{entry.value}: is neither a module nor a durable method")
    return list(found.values())


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as exc:  # anything the user's module raises on import
        raise MethodsError(f"{name}: cannot be imported: {_why(exc)}") from None


def _add(found: dict[str, DurableMethod], method: DurableMethod, source: str) -> None:
    other = found.get(method.name)
    if other is not None and other.function is not method.function:
        raise MethodsError(
            f"{source}: durable method {method.name} is defined twice "
            f"({other.module or '?'} and {method.module or '?'})"
        )
    found[method.name] = method


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:500]
