"""Operation names: ``operations/{uuid4}``, generated and validated here only."""

from __future__ import annotations

import re
import uuid

from lro_server.core.errors import InvalidArgument

#: The collection every operation belongs to.
COLLECTION = "operations"
_PREFIX = COLLECTION + "/"
_UUID4_TEXT = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
_UUID4 = re.compile(_UUID4_TEXT)
#: A full name, matched whole: the common case costs one match and no new string.
_NAME = re.compile(re.escape(_PREFIX) + _UUID4_TEXT)


def new_operation_name() -> str:
    """Return a fresh name. Random (uuid4), never time-ordered: Spanner would hotspot."""
    return _PREFIX + str(uuid.uuid4())


def operation_id(name: str) -> str:
    """Return the id part of a valid name."""
    return validate_operation_name(name)[len(_PREFIX) :]


def validate_operation_name(name: str, *, field: str = "name") -> str:
    """Return ``name`` if it is ``operations/{uuid4}``, else raise InvalidArgument.

    A bare id (the uuid alone, as sent in the ``x-alis-operation-id`` header) is
    accepted and completed to the full name.
    """
    if _NAME.fullmatch(name):
        return name
    if not name:
        raise InvalidArgument(f"{field} is required", metadata={"field": field})
    candidate = name[len(_PREFIX) :] if name.startswith(_PREFIX) else name
    if len(name) > 100 or not _UUID4.fullmatch(candidate):
        raise InvalidArgument(
            f"{field} must look like operations/{{uuid4}}, got {name[:100]!r}",
            reason="MALFORMED_NAME",
            metadata={"field": field},
        )
    return _PREFIX + candidate
