"""Request bodies of the HTTP front: proto3 JSON → request messages, unknown fields refused.

A field the request message does not have is an error (INVALID_ARGUMENT naming the field),
so that ``{"jobid": 1}`` is not silently a RunNow of no job. The one exception is a resume
call (it carries ``x-alis-operation-id``): its body is ignored by the method, and the
waiters already deployed send ``{"data": {}}``, which must keep working.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import Message

from lro_server.core.errors import InvalidArgument

JSON = "application/json"
_UNKNOWN = re.compile(r'has no field named "(?P<field>[^"]+)" at "(?P<where>[^"]+)"')
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


async def parse_body(
    request: web.Request, cls: type[Message], *, ignore_unknown_fields: bool = False
) -> Any:
    """The request body as a ``cls`` message (an empty body is the empty message).

    Raises:
        InvalidArgument: Not JSON, not a valid ``cls``, or a field ``cls`` does not have
            (unless ``ignore_unknown_fields``).
    """
    if request.content_type not in (JSON, "application/octet-stream", "text/plain") and (
        request.can_read_body
    ):
        raise InvalidArgument(
            f"content type must be {JSON}, got {request.content_type!r}",
            reason="UNSUPPORTED_CONTENT_TYPE",
        )
    raw = await request.read()
    message = cls()
    if not raw.strip():
        return message
    try:
        json_format.Parse(raw, message, ignore_unknown_fields=ignore_unknown_fields)
    except json_format.ParseError as exc:
        unknown = _UNKNOWN.search(str(exc))
        if unknown is not None:
            raise _unknown_field(unknown.group("field"), unknown.group("where"), str(exc)) from None
        raise _malformed(cls, exc) from None
    except (UnicodeDecodeError, RecursionError, ValueError) as exc:
        raise _malformed(cls, exc) from None
    return message


def _malformed(cls: type[Message], exc: Exception) -> InvalidArgument:
    return InvalidArgument(
        f"request body is not a valid {cls.DESCRIPTOR.full_name}: {str(exc)[:300]}",
        reason="MALFORMED_JSON",
    )


def _unknown_field(field: str, where: str, text: str) -> InvalidArgument:
    known = re.findall(r"'(\w+)'", text.split("Available Fields", 1)[-1])
    names = sorted({_CAMEL.sub("_", name).lower() for name in known})
    parts = [f'unknown field "{field[:100]}" in {where}']
    parts += [f'did you mean "{g}"?' for g in difflib.get_close_matches(field.lower(), names, 1)]
    parts.append(f"known fields: {', '.join(names)}")
    return InvalidArgument(
        "; ".join(parts),
        reason="UNKNOWN_FIELD",
        metadata={"field": field[:100], "message": where},
    )
