"""AIP-160 filters: parsing, typing, errors and canonical text (their SQL: tests/unit/storage)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lro_server.core import rfc3339
from lro_server.core.errors import InvalidArgument
from lro_server.core.filter import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_TERMS,
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
    parse,
)
from lro_server.core.filter_ast import requires_unfinished

F = OPERATION_FIELDS
RUN = "lro.databricks.v1.RunMetadata"


def us(text: str) -> int:
    return rfc3339.to_micros(text)


# -- parsing --------------------------------------------------------------------------


def test_empty_filter_is_none() -> None:
    assert parse("") is None
    assert parse("   \t") is None
    assert canonical(None) == ""


def test_or_binds_tighter_than_and() -> None:
    done, name, code = (Compare(F["done"], Op.EQ, True), Compare(F["name"], Op.EQ, "x"),
                        Compare(F["error.code"], Op.EQ, 1))  # fmt: skip
    assert parse('done AND name = "x" OR error.code = 1') == And((done, Or((name, code))))
    assert parse('done OR name = "x" AND error.code = 1') == And((Or((done, name)), code))
    assert parse('done name = "x" OR error.code = 1') == And((done, Or((name, code))))
    assert parse('(done AND name = "x") OR error.code = 1') == Or((And((done, name)), code))


def test_not_and_minus_apply_to_the_next_term_only() -> None:
    done, code = Compare(F["done"], Op.EQ, True), Compare(F["error.code"], Op.EQ, 1)
    assert parse("NOT done OR error.code = 1") == Or((Not(done), code))
    assert parse("-done error.code=1") == And((Not(done), code))
    assert parse("NOT (done OR error.code = 1)") == Not(Or((done, code)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("done", Compare(F["done"], Op.EQ, True)),
        ("done = FALSE", Compare(F["done"], Op.EQ, False)),
        ("done != true", Compare(F["done"], Op.NE, True)),
        ("error.code = -3", Compare(F["error.code"], Op.EQ, -3)),
        ("error.code >= 2", Compare(F["error.code"], Op.GE, 2)),
        ("error.code < 2", Compare(F["error.code"], Op.LT, 2)),
        ("error.code > 2", Compare(F["error.code"], Op.GT, 2)),
        ("error.code <= 2", Compare(F["error.code"], Op.LE, 2)),
        ("name = 'it\\'s'", Compare(F["name"], Op.EQ, "it's")),
        ('name = "a\\"b\\\\c"', Compare(F["name"], Op.EQ, 'a"b\\c')),
        ("metadata.state = RUNNING", Compare(F["metadata.state"], Op.EQ, "RUNNING")),
        ('name = "ops/*"', Compare(F["name"], Op.EQ, "ops/", prefix=True)),
        ("name != ops/*", Compare(F["name"], Op.NE, "ops/", prefix=True)),
        ('name = "a\\*"', Compare(F["name"], Op.EQ, "a*")),
        ('name:"x"', Has(F["name"], "x")),
        ("error.code:*", Has(F["error.code"], None)),
        (f'metadata.@type = "type.googleapis.com/{RUN}"', Compare(F["metadata.@type"], Op.EQ, RUN)),
        (f"metadata.@type = {RUN}", Compare(F["metadata.@type"], Op.EQ, RUN)),
        (
            'create_time > "2024-01-01T01:00:00.5+01:00"',
            Compare(F["create_time"], Op.GT, us("2024-01-01T00:00:00.5Z")),
        ),
        ("update_time <= '1970-01-01T00:00:00.000001000Z'", Compare(F["update_time"], Op.LE, 1)),
    ],
)
def test_parses_every_operator_and_value_form(text: str, expected: Expr) -> None:
    assert parse(text) == expected
    assert parse(canonical(expected)) == expected


def test_canonical_ignores_spelling() -> None:
    spellings = ["done=true", " done = true ", "done", "(done)", "done = TRUE"]
    assert {canonical(parse(s)) for s in spellings} == {"done=true"}
    assert canonical(parse(f'metadata.@type="type.googleapis.com/{RUN}"')) == canonical(
        parse(f"metadata.@type = '{RUN}'")
    )
    assert canonical(parse("(done AND error.code=1) AND name:x")) == (
        'done=true AND error.code=1 AND name:"x"'
    )
    assert canonical(parse("-done OR NOT done")) == "NOT done=true OR NOT done=true"


def test_fields_are_easy_to_add() -> None:
    fields = field_registry([*OPERATION_FIELDS.values(), FieldSpec("retries", FieldType.INT, "r")])
    assert parse("retries > 2", fields) == Compare(fields["retries"], Op.GT, 2)
    with pytest.raises(ValueError, match="identifier"):
        FieldSpec("x", FieldType.INT, "x; DROP TABLE y")
    with pytest.raises(ValueError, match="twice"):
        field_registry([FieldSpec("x", FieldType.INT, "x"), FieldSpec("x", FieldType.INT, "y")])


# -- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("done AND foo = 1", 9, ['unknown field "foo"', "known fields: create_time, done,"]),
        ('done = "abc"', 7, ['"done" expects true or false', '"abc"']),
        ("done > true", 5, ['">" at position 5 does not apply']),
        ("create_time > 5", 14, ["RFC 3339"]),
        ('create_time > "2024-13-01T00:00:00Z"', 14, ["invalid timestamp"]),
        ('create_time > "2024-01-01T00:00:00"', 14, ["invalid timestamp"]),
        ('create_time > "2024-01-01T00:00:00.0000001Z"', 14, ["finer than microseconds"]),
        ('error.code = "x"', 13, ['"error.code" expects an integer']),
        ("error.code = 1.5", 13, ["expects an integer"]),
        ("error.code = 99999999999999999999", 13, ["out of range"]),
        ("error.code:1", 11, ['only supports "error.code:*"']),
        ("name:ab*", 5, ["not supported with"]),
        ("name > ab*", 7, ["wildcard"]),
        ("error.code = 1*", 13, ["wildcard"]),
        ("name", 0, ["needs a comparison"]),
        ('"hello"', 0, ["bare value", "not supported"]),
        ("done AND", 8, ["expected a field name", "end of filter"]),
        ("AND done", 0, ['expected a field name, found "AND"']),
        ("done OR OR done", 8, ['found "OR"']),
        ("(done", 5, ['expected ")"']),
        ("done)", 4, ['unexpected ")"']),
        ("name = ", 7, ['expected a value after "="']),
        ("name = (x)", 7, ["expected a value"]),
        ('name = "abc', 7, ["unterminated string"]),
        ('name = "a\\qb"', 9, ["unknown escape"]),
        ("done ! = true", 5, ['unexpected character "!"']),
        ("name = a, b", 8, ['unexpected character ","']),
        ("done = true = false", 12, ['unexpected "="']),
        ("NOT NOT done", 4, ["expected a field name"]),
    ],
)
def test_errors_say_where(text: str, position: int, words: list[str]) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse(text)
    error = caught.value
    assert error.message.startswith("filter: ")
    assert f"position {position}" in error.message
    for word in words:
        assert word in error.message
    assert error.metadata == {"field": "filter", "position": str(position)}


def test_limits() -> None:
    with pytest.raises(InvalidArgument, match="longer than"):
        parse("done " * (MAX_LENGTH // 5) + "x")
    parse(" AND ".join(["done"] * MAX_TERMS))
    with pytest.raises(InvalidArgument, match=f"more than {MAX_TERMS} terms"):
        parse(" ".join(["done"] * (MAX_TERMS + 1)))
    parse("(" * MAX_DEPTH + "done" + ")" * MAX_DEPTH)
    with pytest.raises(InvalidArgument, match="nested deeper"):
        parse("(" * (MAX_DEPTH + 1) + "done" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(InvalidArgument, match="nested deeper"):
        parse("NOT (" * MAX_DEPTH + "done" + ")" * MAX_DEPTH)
    with pytest.raises(InvalidArgument):  # deep nesting must not reach RecursionError
        parse("(" * 1000)


# -- properties -----------------------------------------------------------------------

fast = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_filterish = st.text(alphabet="done ame:=!<>()-*\"'\\.@ANDORTx1_", max_size=60)


@fast
@given(st.one_of(st.text(max_size=80), _filterish))
def test_any_text_either_parses_or_raises_invalid_argument(text: str) -> None:
    try:
        expr = parse(text)
    except InvalidArgument as error:
        assert error.metadata["field"] == "filter"
        assert 0 <= int(error.metadata["position"]) <= len(text)
        return
    assert parse(canonical(expr)) == expr


@pytest.mark.parametrize(
    ("text", "required"),
    [
        ("", False),
        ("done = false", True),
        ('done = false AND metadata.state = "RUNNING"', True),
        ('metadata.state = "RUNNING" AND done = false AND error.code = 0', True),
        ('done = false OR metadata.state = "RUNNING"', False),
        ("done = true", False),
        ("done != true", False),
        ("NOT done = true", False),
    ],
)
def test_requires_unfinished_sees_a_top_level_done_false(text: str, required: bool) -> None:
    assert requires_unfinished(parse(text)) is required
