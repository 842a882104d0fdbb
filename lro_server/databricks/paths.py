"""Identifiers that go into Databricks REST paths, checked before they get there.

A warehouse or pipeline id is part of the URL path (``/api/2.0/sql/warehouses/{id}/stop``).
An id such as ``../../jobs/runs/cancel`` or ``x?y=1`` would otherwise reach another
endpoint than the one the method names, with the server's Databricks credentials.
"""

from __future__ import annotations

import re

from lro_server.core.errors import InvalidArgument

#: What Databricks ids look like (hex, UUIDs, ``0123-456789-abcdef12``): letters, digits,
#: and ``-_.~`` inside; never a dot segment, a slash, a query or an escape.
_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._~-]{0,127})")


def path_id(value: object, field: str) -> str:
    """``value`` as a path segment, or InvalidArgument naming ``field``."""
    text = str(value)
    if not _ID.fullmatch(text) or ".." in text:
        raise InvalidArgument(f"{field} is not a valid Databricks id", metadata={"field": field})
    return text
