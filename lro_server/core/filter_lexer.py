"""AIP-160 list filters: the text cut into tokens, and the error every filter stage raises.

The grammar and semantics are in :mod:`lro_server.core.filter`, which parses these tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from lro_server.core.errors import InvalidArgument

_COMPARATORS = ("<=", ">=", "!=", "=", "<", ">", ":")
# Characters that end a bare word; "-" does not (names like "a-b"), except up front.
_DELIMITERS = frozenset("()\"'=<>!:,")
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "*": "*"}


def filter_error(message: str, position: int) -> InvalidArgument:
    """The error of a bad filter, saying where (0-based character offset)."""
    return InvalidArgument(
        f"filter: {message}",
        reason="INVALID_FILTER",
        metadata={"field": "filter", "position": str(position)},
    )


@dataclass(frozen=True, slots=True)
class Token:
    """One token of a filter."""

    kind: str  # word | string | minus | lparen | rparen | cmp | eof
    text: str  # as written
    value: str  # decoded (strings: without quotes and the wildcard star)
    pos: int
    wildcard: bool = False  # ends in an unescaped "*"

    def describe(self) -> str:
        """The token as an error message shows it (long ones cut short)."""
        if self.kind == "eof":
            return "end of filter"
        shown = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        return shown if self.kind == "string" else f'"{shown}"'

    def at(self) -> str:
        """The token and its position, for an error message."""
        return f"{self.describe()} at position {self.pos}"


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, ending with one of kind ``eof``.

    Raises:
        InvalidArgument: A character no token starts with, an unknown escape or an
            unterminated string, with the position.
    """
    tokens: list[Token] = []
    i, end = 0, len(text)
    while i < end:
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "()":
            tokens.append(Token("lparen" if char == "(" else "rparen", char, char, i))
            i += 1
        elif char in "\"'":
            token = _string(text, i)
            tokens.append(token)
            i += len(token.text)
        elif char == "-":
            tokens.append(Token("minus", char, char, i))
            i += 1
        elif cmp := next((c for c in _COMPARATORS if text.startswith(c, i)), None):
            tokens.append(Token("cmp", cmp, cmp, i))
            i += len(cmp)
        elif char in _DELIMITERS:
            raise filter_error(f'unexpected character "{char}" at position {i}', i)
        else:
            start = i
            while i < end and not text[i].isspace() and text[i] not in _DELIMITERS:
                i += 1
            word = text[start:i]
            wildcard = word.endswith("*")
            tokens.append(Token("word", word, word[:-1] if wildcard else word, start, wildcard))
    tokens.append(Token("eof", "", "", end))
    return tokens


def _string(text: str, start: int) -> Token:
    quote, star = text[start], False
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == quote:
            value = "".join(chars[:-1] if star else chars)
            return Token("string", text[start : i + 1], value, start, star)
        if char == "\\":
            escaped = text[i + 1 : i + 2]
            if escaped not in _ESCAPES:
                raise filter_error(f'unknown escape "\\{escaped}" at position {i}', i)
            chars.append(_ESCAPES[escaped])
            star = False  # "\*" is a literal star, never the wildcard
            i += 2
            continue
        chars.append(char)
        star = char == "*"
        i += 1
    raise filter_error(f"unterminated string starting at position {start}", start)
