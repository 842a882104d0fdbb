"""Offset paging with opaque page tokens, answered the way the SDK's list loops expect."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TypeVar

from .errors import invalid_parameter
from .routing import JSON, SimRequest

__all__ = ["page"]

T = TypeVar("T")


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        kind, _, value = text.partition(":")
        if kind != "offset":
            raise ValueError(text)
        return int(value)
    except ValueError:
        raise invalid_parameter(f"Invalid page token: {token}") from None


def page(
    items: Sequence[T],
    req: SimRequest,
    *,
    default_limit: int,
    max_limit: int,
    limit_param: str = "limit",
    zero_means_max: bool = False,
) -> tuple[Sequence[T], JSON]:
    """Cuts one page out of ``items`` for a list call.

    Reads ``page_token`` (or the deprecated ``offset``) and ``limit_param`` from the
    request. Never answers an empty ``next_page_token``: the SDK's list loops only stop
    when the key is absent or empty, and some of its ``get`` loops spin on ``""``.

    Args:
        items: Everything the call lists, in answer order.
        req: The request.
        default_limit: The page size when the request gives none.
        max_limit: The largest page size allowed (more is 400 INVALID_PARAMETER_VALUE).
        limit_param: The name of the page size parameter.
        zero_means_max: Whether a limit of 0 means ``max_limit`` (jobs/runs/list does that).

    Returns:
        The page and the paging keys to merge into the answer (``has_more``,
        ``next_page_token``, ``prev_page_token``).
    """
    limit = req.opt_int(limit_param, default_limit)
    assert limit is not None
    if limit == 0 and zero_means_max:
        limit = max_limit
    if limit < 1 or limit > max_limit:
        raise invalid_parameter(f"{limit_param} must be between 1 and {max_limit}, got {limit}")
    token = req.opt_str("page_token")
    start = _offset(token) if token else (req.opt_int("offset", 0) or 0)
    start = max(start, 0)
    chunk = items[start : start + limit]
    extra: JSON = {"has_more": start + limit < len(items)}
    if extra["has_more"]:
        extra["next_page_token"] = _token(start + limit)
    if start > 0:
        extra["prev_page_token"] = _token(max(start - limit, 0))
    return chunk, extra
