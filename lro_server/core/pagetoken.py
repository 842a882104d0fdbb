"""AIP-158 pagination: opaque page tokens and page sizes.

``ListOperations`` pages in the order ``(create_time_us DESC, name DESC)``. A page
token carries the last row's key of the previous page and is bound to the request's
filter (its ``filter.canonical`` text) and to the caller (``scope``), so it cannot be
replayed with another filter or by someone else. Layout, URL-safe base64 without
padding::

    version (1) | scope tag (8) | filter tag (8) | create_time_us (8, signed)
    | name length (2) | name (UTF-8) | HMAC-SHA256 over all before it, truncated (16)

The scope and filter tags are HMACs too (not plain hashes) so a token reveals nothing
about the filter or the owner; keeping them in the token lets a mismatch be reported
as such instead of as tampering.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass

from lro_server.core.errors import InvalidArgument

VERSION = 1
_HEAD = struct.Struct(">B8s8sqH")  # version, scope tag, filter tag, create_time_us, name length
_TAG_SIZE = 16
_MIN_KEY_SIZE = 16
_MAX_NAME_BYTES = 1024
_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next page starts: strictly after this row in the listing order."""

    create_time_us: int
    name: str


def encode(
    key: bytes, *, filter_canonical: str, scope: str, last_create_time_us: int, last_name: str
) -> str:
    """The ``next_page_token`` for a page that ended with the given row.

    Args:
        key: Secret HMAC key (at least 16 bytes), the same on every replica.
        filter_canonical: ``filter.canonical`` of the request's filter.
        scope: Whose listing this is (the caller / owner).
        last_create_time_us: ``create_time_us`` of the page's last operation.
        last_name: ``name`` of the page's last operation.

    Raises:
        ValueError: The key is too short or the name too long (programming errors).
    """
    _check_key(key)
    name = last_name.encode()
    if len(name) > _MAX_NAME_BYTES:
        raise ValueError("operation name too long for a page token")
    body = _HEAD.pack(
        VERSION,
        _bind(key, b"scope", scope),
        _bind(key, b"filter", filter_canonical),
        last_create_time_us,
        len(name),
    )
    body += name
    return base64.urlsafe_b64encode(body + _tag(key, body)).rstrip(b"=").decode("ascii")


def decode(key: bytes, token: str, *, filter_canonical: str, scope: str) -> Cursor:
    """Check a ``page_token`` and return the cursor it carries.

    Args:
        key: The HMAC key ``encode`` used.
        token: The request's ``page_token`` (non-empty).
        filter_canonical: ``filter.canonical`` of this request's filter.
        scope: Who is listing now.

    Raises:
        InvalidArgument: The token is malformed, was altered, or belongs to another
            filter or caller (``field`` = ``page_token`` in the ErrorInfo metadata).
    """
    _check_key(key)
    raw = _unbase64(token)
    if len(raw) < _HEAD.size + _TAG_SIZE:
        raise _error("page_token is malformed", "PAGE_TOKEN_MALFORMED")
    body, tag = raw[:-_TAG_SIZE], raw[-_TAG_SIZE:]
    # Authenticate before reading anything else: every later check trusts the bytes.
    if not hmac.compare_digest(tag, _tag(key, body)):
        raise _error("page_token is invalid or was modified", "PAGE_TOKEN_INVALID")
    version, scope_tag, filter_tag, create_time_us, size = _HEAD.unpack_from(body)
    if version != VERSION:
        raise _error("page_token has an unsupported version", "PAGE_TOKEN_MALFORMED")
    if len(body) != _HEAD.size + size:
        raise _error("page_token is malformed", "PAGE_TOKEN_MALFORMED")
    if not hmac.compare_digest(scope_tag, _bind(key, b"scope", scope)):
        raise _error("page_token was issued to a different caller", "PAGE_TOKEN_SCOPE_MISMATCH")
    if not hmac.compare_digest(filter_tag, _bind(key, b"filter", filter_canonical)):
        raise _error("page_token does not match the request's filter", "PAGE_TOKEN_FILTER_MISMATCH")
    try:
        name = body[_HEAD.size :].decode()
    except UnicodeDecodeError:
        raise _error("page_token is malformed", "PAGE_TOKEN_MALFORMED") from None
    return Cursor(create_time_us, name)


def page_size(requested: int, *, default: int, maximum: int) -> int:
    """The page size to use for a requested ``page_size`` (AIP-158).

    Args:
        requested: The request's ``page_size``; 0 means "server's choice".
        default: Used for 0.
        maximum: Larger requests are clamped to this (not an error, per AIP-158).

    Raises:
        InvalidArgument: ``requested`` is negative.
    """
    if requested < 0:
        raise InvalidArgument(
            f"page_size must not be negative, got {requested}",
            reason="INVALID_PAGE_SIZE",
            metadata={"field": "page_size"},
        )
    if requested == 0:
        return min(default, maximum)
    return min(requested, maximum)


def _check_key(key: bytes) -> None:
    if len(key) < _MIN_KEY_SIZE:
        raise ValueError(f"page token key must have at least {_MIN_KEY_SIZE} bytes")


def _bind(key: bytes, purpose: bytes, text: str) -> bytes:
    return hmac.new(key, purpose + b"\0" + text.encode(), hashlib.sha256).digest()[:8]


def _tag(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, b"token\0" + body, hashlib.sha256).digest()[:_TAG_SIZE]


def _unbase64(token: str) -> bytes:
    malformed = _error("page_token is malformed", "PAGE_TOKEN_MALFORMED")
    if not _ALPHABET.fullmatch(token) or len(token) % 4 == 1:
        raise malformed
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise malformed from None
    # Unused trailing bits make several strings decode alike; accept only the canonical one.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        raise malformed
    return raw


def _error(message: str, reason: str) -> InvalidArgument:
    return InvalidArgument(message, reason=reason, metadata={"field": "page_token"})
