"""AIP-160 list filters: parse and type-check ``ListOperations`` filters.

``parse(text, fields)`` turns a ``ListOperations`` filter (cut into tokens by
``filter_lexer``) into the small immutable tree of ``filter_ast`` whose leaves are
already type-checked against the declared fields; each store evaluates that tree (the
SQL stores compile it with ``lro_server.storage.filter_sql``), ``canonical`` prints it
back in one normal form (page tokens are bound to that text, so ``done=true`` and
``done = true`` are the same filter).

Grammar (AIP-160, keywords case-sensitive)::

    expression = sequence { "AND" sequence }
    sequence   = factor { factor }            # whitespace: implicit AND
    factor     = term { "OR" term }           # OR binds tighter than AND
    term       = [ "NOT" | "-" ] simple
    simple     = restriction | "(" expression ")"
    restriction = field [ comparator value ]  # comparator: = != < > <= >= :

So ``a AND b OR c`` means ``a AND (b OR c)``. Values are quoted strings (``"..."`` or
``'...'``, escapes ``\\" \\' \\\\ \\n \\t \\r \\*``), integers, ``true``/``false`` and
bare words. Timestamps are quoted RFC 3339 strings with an offset and at most
microsecond precision.

Semantics:
    * ``field = "abc*"``: a trailing unescaped ``*`` makes ``=``/``!=`` a prefix match
      (case-sensitive); ``\\*`` is a literal star.
    * ``field:*``: the field is present (not NULL; for strings also not empty).
    * ``string_field:"abc"``: substring containment (case-sensitive).
    * A bare boolean field ``done`` means ``done = true``.
    * Missing values (e.g. ``error.code`` of an operation without error): following
      AIP-160's traversal rule, every comparison with an unset field is *false*,
      whatever the operator, ``!=`` included. Logic is two-valued: ``NOT`` flips the
      result, so ``NOT error.code = 1`` is true for operations without error while
      ``error.code != 1`` is false for them. Both store dialects give the same answer.
    * ``metadata.@type`` accepts a type URL or a bare message name; everything up to
      the last ``/`` is ignored.

Every error raises ``InvalidArgument`` saying where (0-based character offset and the
offending token), with ErrorInfo metadata ``{"field": "filter", "position": "<n>"}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from lro_server.core import rfc3339
from lro_server.core.filter_ast import (
    OPERATION_FIELDS,
    And,
    Compare,
    Expr,
    FieldSpec,
    FieldType,
    Has,
    Not,
    Op,
    Or,
    canonical,
    field_registry,
    label_field,
)
from lro_server.core.filter_lexer import Token, filter_error, tokenize

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_TERMS",
    "OPERATION_FIELDS",
    "And",
    "Compare",
    "Expr",
    "FieldSpec",
    "FieldType",
    "Has",
    "Not",
    "Op",
    "Or",
    "canonical",
    "field_registry",
    "parse",
]

#: Longest accepted filter, in characters.
MAX_LENGTH = 2000
#: Most restrictions (``field op value``) in one filter.
MAX_TERMS = 50
#: Deepest nesting of parentheses and negations (also bounds the parser's recursion).
MAX_DEPTH = 20

_KEYWORDS = frozenset({"AND", "OR", "NOT"})
_INT = re.compile(r"-?[0-9]+")


def parse(text: str, fields: Mapping[str, FieldSpec] = OPERATION_FIELDS) -> Expr | None:
    """Parse and type-check an AIP-160 filter.

    Args:
        text: The request's ``filter``; empty or blank means no filter.
        fields: The filterable fields, by name (see ``field_registry``).

    Returns:
        The filter tree, or None for an empty filter.

    Raises:
        InvalidArgument: Syntax, unknown field, type or limit errors, with the position.
    """
    if len(text) > MAX_LENGTH:
        raise filter_error(f"longer than {MAX_LENGTH} characters", MAX_LENGTH)
    if not text.strip():
        return None
    return _Parser(text, fields).parse()


def _join(kind: type[And] | type[Or], items: list[Expr]) -> Expr:
    if len(items) == 1:
        return items[0]
    flat: list[Expr] = []
    for item in items:  # (a AND b) AND c is a AND b AND c: one canonical form
        flat.extend(item.operands if isinstance(item, kind) else (item,))
    return kind(tuple(flat))


class _Parser:
    """Recursive descent over the token list, one method per grammar rule."""

    def __init__(self, text: str, fields: Mapping[str, FieldSpec]) -> None:
        self._tokens = tokenize(text)
        self._index = 0
        self._fields = fields
        self._terms = 0
        self._depth = 0

    def parse(self) -> Expr:
        expr = self._expression()
        token = self._peek()
        if token.kind != "eof":
            raise filter_error(f"unexpected {token.at()}", token.pos)
        return expr

    def _peek(self) -> Token:
        return self._tokens[self._index]

    def _next(self) -> Token:
        token = self._tokens[self._index]
        self._index += 1
        return token

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        return token.kind == "word" and token.text == word

    def _starts_term(self) -> bool:
        token = self._peek()
        if token.kind == "word":
            return token.text not in ("AND", "OR")
        return token.kind in ("lparen", "minus", "string")

    def _expression(self) -> Expr:
        items = [self._sequence()]
        while self._keyword("AND"):
            self._next()
            items.append(self._sequence())
        return _join(And, items)

    def _sequence(self) -> Expr:
        items = [self._factor()]
        while self._starts_term():
            items.append(self._factor())
        return _join(And, items)

    def _factor(self) -> Expr:
        items = [self._term()]
        while self._keyword("OR"):
            self._next()
            items.append(self._term())
        return _join(Or, items)

    def _term(self) -> Expr:
        token = self._peek()
        if token.kind == "minus" or (token.kind == "word" and token.text == "NOT"):
            self._next()
            self._enter(token)
            operand = self._simple()
            self._depth -= 1
            return Not(operand)
        return self._simple()

    def _simple(self) -> Expr:
        token = self._peek()
        if token.kind != "lparen":
            return self._restriction()
        self._next()
        self._enter(token)
        expr = self._expression()
        close = self._next()
        if close.kind != "rparen":
            raise filter_error(
                f'expected ")" to close "(" at position {token.pos}, found {close.at()}',
                close.pos,
            )
        self._depth -= 1
        return expr

    def _enter(self, token: Token) -> None:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise filter_error(f"nested deeper than {MAX_DEPTH} levels at {token.at()}", token.pos)

    def _restriction(self) -> Expr:
        token = self._next()
        if token.kind == "string":
            raise filter_error(
                f"bare value {token.at()}: searching all fields is not supported; "
                f"compare a field instead, e.g. name = {token.text}",
                token.pos,
            )
        if token.kind != "word" or token.text in _KEYWORDS:
            raise filter_error(f"expected a field name, found {token.at()}", token.pos)
        self._terms += 1
        if self._terms > MAX_TERMS:
            raise filter_error(f"more than {MAX_TERMS} terms at {token.at()}", token.pos)
        spec = self._fields.get(token.text) or label_field(token.text)
        if spec is None:
            known = ", ".join([*sorted(self._fields), "labels.<key>"])
            raise filter_error(f"unknown field {token.at()}; known fields: {known}", token.pos)
        if self._peek().kind != "cmp":
            if spec.type is FieldType.BOOL:  # a bare boolean field: "done" is "done = true"
                return Compare(spec, Op.EQ, True)
            raise filter_error(
                f"field {token.at()} needs a comparison, e.g. {spec.name} = ...", token.pos
            )
        comparator = self._next()
        return _typed(spec, comparator, self._value(comparator))

    def _value(self, comparator: Token) -> Token:
        token = self._next()
        if token.kind == "minus":  # a negative number: the "-" must touch the digits
            following = self._peek()
            if following.kind == "word" and following.pos == token.pos + 1:
                self._next()
                text = "-" + following.text
                return Token("word", text, "-" + following.value, token.pos, following.wildcard)
        if token.kind == "string" or (token.kind == "word" and token.text not in _KEYWORDS):
            return token
        raise filter_error(
            f'expected a value after "{comparator.text}" at position {comparator.pos}, '
            f"found {token.at()}",
            token.pos,
        )


def _typed(spec: FieldSpec, comparator: Token, token: Token) -> Expr:
    """Check ``token`` against the field's type and build the leaf."""
    kind = spec.type
    if comparator.text == ":":
        if token.kind == "word" and token.text == "*":
            return Has(spec, None)
        if kind is not FieldType.STRING:
            raise filter_error(
                f'":" on {kind.value} field "{spec.name}" only supports "{spec.name}:*", '
                f"found {token.at()}",
                token.pos,
            )
        if token.wildcard:
            raise filter_error(
                f'wildcard "*" is not supported with ":" (substring match), found {token.at()}',
                token.pos,
            )
        return Has(spec, _normalized(spec, token.value))
    op = Op(comparator.text)
    if token.wildcard and (kind is not FieldType.STRING or op not in (Op.EQ, Op.NE)):
        raise filter_error(
            f'wildcard "*" works only with "=" and "!=" on string fields, found {token.at()}',
            token.pos,
        )
    if kind is FieldType.BOOL:
        if op not in (Op.EQ, Op.NE):
            raise filter_error(
                f'"{op.value}" at position {comparator.pos} does not apply to bool field '
                f'"{spec.name}"',
                comparator.pos,
            )
        if token.kind != "word" or token.text.lower() not in ("true", "false"):
            raise filter_error(
                f'field "{spec.name}" expects true or false, found {token.at()}', token.pos
            )
        return Compare(spec, op, token.text.lower() == "true")
    if kind is FieldType.INT:
        if token.kind != "word" or not _INT.fullmatch(token.text):
            raise filter_error(
                f'field "{spec.name}" expects an integer, found {token.at()}', token.pos
            )
        number = int(token.text)
        if not -(2**63) <= number < 2**63:
            raise filter_error(f"integer out of range: {token.at()}", token.pos)
        return Compare(spec, op, number)
    if kind is FieldType.TIMESTAMP:
        return Compare(spec, op, _micros(spec, token))
    return Compare(spec, op, _normalized(spec, token.value), prefix=token.wildcard)


def _normalized(spec: FieldSpec, value: str) -> str:
    return spec.normalize(value) if spec.normalize else value


def _micros(spec: FieldSpec, token: Token) -> int:
    if token.kind != "string":
        raise filter_error(
            f'field "{spec.name}" expects a quoted RFC 3339 timestamp such as '
            f'"2024-01-31T12:00:00Z", found {token.at()}',
            token.pos,
        )
    try:
        return rfc3339.to_micros(token.value)
    except ValueError as exc:
        raise filter_error(f"invalid timestamp {token.at()}: {exc}", token.pos) from None
