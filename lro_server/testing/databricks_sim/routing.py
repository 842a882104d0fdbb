"""The request view handlers see, and the route table entries families declare."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from multidict import MultiMapping

from .errors import invalid_parameter

__all__ = ["JSON", "Route", "SimRequest"]

#: A JSON object as handlers return it.
JSON = dict[str, Any]


@dataclass
class SimRequest:
    """A parsed REST call, handed to a family handler under the simulator's state lock.

    Attributes:
        method: The HTTP method.
        path: The request path.
        params: Path parameters of the matched route (e.g. a pipeline id).
        query: The query string.
        body: The JSON body (empty for GET).
        now: The simulator clock at the time of the call.
    """

    method: str
    path: str
    params: Mapping[str, str]
    query: MultiMapping[str]
    body: Mapping[str, Any]
    now: float

    def get(self, name: str) -> Any:
        """Returns a parameter from the JSON body, else the query string, else ``None``."""
        if name in self.body:
            return self.body[name]
        return self.query.get(name)

    def require(self, name: str) -> Any:
        """Returns a parameter or raises 400 INVALID_PARAMETER_VALUE like Databricks."""
        value = self.get(name)
        if value is None or value == "":
            raise invalid_parameter(f"Missing required field: {name}")
        return value

    def require_int(self, name: str) -> int:
        """Returns a required integer parameter (body number or query string)."""
        return _to_int(name, self.require(name))

    def opt_int(self, name: str, default: int | None = None) -> int | None:
        """Returns an optional integer parameter."""
        value = self.get(name)
        return default if value is None or value == "" else _to_int(name, value)

    def opt_bool(self, name: str) -> bool:
        """Returns an optional boolean parameter (``true``/``false`` in a query string)."""
        value = self.get(name)
        if isinstance(value, str):
            return value.lower() == "true"
        return bool(value)

    def opt_str(self, name: str) -> str | None:
        """Returns an optional string parameter."""
        value = self.get(name)
        return None if value is None else str(value)

    def getall(self, name: str) -> list[str]:
        """Returns every value of a repeated query parameter."""
        return list(self.query.getall(name, []))


def _to_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise invalid_parameter(f"Invalid value for {name}: {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_parameter(f"Invalid value for {name}: {value!r}") from None


#: A family handler: runs under the state lock, returns the JSON answer or raises ApiError.
Handler = Callable[[SimRequest], JSON]


@dataclass(frozen=True)
class Route:
    """One REST endpoint.

    Attributes:
        method: The HTTP method.
        path: An aiohttp route template, e.g. ``/api/{version:2\\.[012]}/jobs/runs/get``.
        handler: The family's handler.
    """

    method: str
    path: str
    handler: Handler


def api(versions: str, rest: str) -> str:
    """Builds a route template for ``/api/<version>/<rest>`` accepting ``versions``.

    Args:
        versions: The accepted versions, e.g. ``"2.1 2.2"``.
        rest: The path after the version, e.g. ``"jobs/runs/get"``.
    """
    alternatives = "|".join(v.replace(".", "\\.") for v in versions.split())
    return f"/api/{{version:(?:{alternatives})}}/{rest}"
