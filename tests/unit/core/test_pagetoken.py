"""AIP-158 page tokens and page sizes (keyset pages on SQLite: tests/unit/storage)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lro_server.core import pagetoken
from lro_server.core.errors import InvalidArgument
from lro_server.core.filter import canonical, parse
from lro_server.core.pagetoken import Cursor, decode, encode, page_size

KEY = b"k" * 32
FILTER = canonical(parse("done = true"))


def token(**overrides: object) -> str:
    args: dict[str, object] = {
        "filter_canonical": FILTER,
        "scope": "users/alice",
        "last_create_time_us": 1_700_000_000_000_000,
        "last_name": "operations/6f1c",
    }
    args.update(overrides)
    return encode(KEY, **args)  # type: ignore[arg-type]


def rejected(text: str, *, filter_canonical: str = FILTER, scope: str = "users/alice") -> str:
    with pytest.raises(InvalidArgument) as caught:
        decode(KEY, text, filter_canonical=filter_canonical, scope=scope)
    assert caught.value.metadata == {"field": "page_token"}
    return caught.value.message


def test_round_trip() -> None:
    text = token()
    assert decode(KEY, text, filter_canonical=FILTER, scope="users/alice") == Cursor(
        1_700_000_000_000_000, "operations/6f1c"
    )
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@settings(max_examples=200, deadline=None)
@given(
    micros=st.integers(-(2**63), 2**63 - 1),
    name=st.text(max_size=100),
    scope=st.text(max_size=30),
    filter_text=st.text(max_size=50),
)
def test_round_trip_any_values(micros: int, name: str, scope: str, filter_text: str) -> None:
    text = encode(
        KEY, filter_canonical=filter_text, scope=scope, last_create_time_us=micros, last_name=name
    )
    assert decode(KEY, text, filter_canonical=filter_text, scope=scope) == Cursor(micros, name)


def test_mismatches_have_their_own_messages() -> None:
    other_filter = canonical(parse("done = false"))
    assert rejected(token(), filter_canonical=other_filter) == (
        "page_token does not match the request's filter"
    )
    assert rejected(token(), scope="users/bob") == "page_token was issued to a different caller"
    with pytest.raises(InvalidArgument, match="invalid or was modified"):
        decode(b"x" * 32, token(), filter_canonical=FILTER, scope="users/alice")


def test_equivalent_filter_spellings_share_tokens() -> None:
    text = token(filter_canonical=canonical(parse("done")))
    decoded = decode(
        KEY, text, filter_canonical=canonical(parse(" done=TRUE ")), scope="users/alice"
    )
    assert decoded.name == "operations/6f1c"


def test_every_flipped_byte_is_detected() -> None:
    raw = base64.urlsafe_b64decode(token() + "==")
    for index in range(len(raw)):
        for bit in (0x01, 0x80):
            changed = bytearray(raw)
            changed[index] ^= bit
            forged = base64.urlsafe_b64encode(bytes(changed)).rstrip(b"=").decode()
            assert rejected(forged) == "page_token is invalid or was modified"


def test_every_changed_character_is_detected() -> None:
    text = token()
    for index, char in enumerate(text):
        for replacement in {"A", "-", "_", "z"} - {char}:
            rejected(text[:index] + replacement + text[index + 1 :])


@pytest.mark.parametrize(
    "text",
    ["", "a", "abc", "!!!!", "abcd=", "a+b/", "YWJj\n", "é" * 8, token() + "=", token()[:-3]],
)
def test_malformed(text: str) -> None:
    assert rejected(text) in ("page_token is malformed", "page_token is invalid or was modified")


def test_non_canonical_base64_is_malformed() -> None:
    text = token()
    raw = base64.urlsafe_b64decode(text + "==")
    assert len(raw) % 3 != 0  # so the last character has unused bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = text[:-1] + alphabet[alphabet.index(text[-1]) ^ 1]  # sets an unused bit
    assert base64.urlsafe_b64decode(twin + "==") == raw
    assert rejected(twin) == "page_token is malformed"


def test_other_versions_are_refused() -> None:
    raw = bytearray(base64.urlsafe_b64decode(token() + "=="))
    raw[0] = 2
    body = bytes(raw[:-16])
    forged = base64.urlsafe_b64encode(body + pagetoken._tag(KEY, body)).rstrip(b"=").decode()
    assert rejected(forged) == "page_token has an unsupported version"


def test_short_keys_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        encode(b"short", filter_canonical="", scope="", last_create_time_us=0, last_name="x")


@pytest.mark.parametrize(
    ("requested", "expected"),
    [(0, 50), (1, 1), (50, 50), (1000, 1000), (1001, 1000), (10**9, 1000)],
)
def test_page_size(requested: int, expected: int) -> None:
    assert page_size(requested, default=50, maximum=1000) == expected


def test_negative_page_size() -> None:
    with pytest.raises(InvalidArgument) as caught:
        page_size(-1, default=50, maximum=1000)
    assert caught.value.metadata == {"field": "page_size"}
