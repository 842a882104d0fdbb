"""AIP-160 filters: parsing, typing, errors, canonical text; SQL against the Python evaluator."""

from __future__ import annotations

import sqlite3

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
from lro_server.core.filter_sql import compile_filter
from lro_server.core.sql import Dialect
from lro_server.testing.memory_filter import matches

F = OPERATION_FIELDS
RUN = "lro.databricks.v1.RunMetadata"
CLUSTER = "lro.databricks.v1.ClusterMetadata"


def us(text: str) -> int:
    return rfc3339.to_micros(text)


# name, done, metadata_type, error_code, create_time_us, update_time_us, state
ROWS: list[tuple[str, bool, str | None, int | None, int, int, str | None]] = [
    ("operations/a1", False, RUN, None, us("2024-01-01T00:00:00Z"), 1, "RUNNING"),
    ("operations/a2", True, RUN, None, us("2024-02-01T00:00:00Z"), 2, "TERMINATED"),
    ("operations/b1", True, CLUSTER, 1, us("2024-03-01T00:00:00Z"), 3, "TERMINATED"),
    ("operations/b2", True, CLUSTER, 13, us("2024-03-02T00:00:00Z"), 4, "INTERNAL_ERROR"),
    ("operations/A1", False, None, None, us("2024-04-01T00:00:00Z"), 5, None),
    ("operations/x%_y", False, RUN, None, us("2023-12-31T23:59:59.999999Z"), 6, "PENDING"),
    ("operations/empty", False, "", None, 0, 7, ""),
    ("operations/c1", True, RUN, -2, us("2024-01-01T00:00:00Z"), 8, "TERMINATED"),
]
ALL = {row[0].removeprefix("operations/") for row in ROWS}
COLUMNS = ("name", "done", "metadata_type", "error_code", "create_time_us", "update_time_us")


def _database() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE TABLE operations (name TEXT PRIMARY KEY, done INTEGER NOT NULL,"
        " metadata_type TEXT, error_code INTEGER, create_time_us INTEGER NOT NULL,"
        " update_time_us INTEGER NOT NULL, state TEXT)"
    )
    db.executemany("INSERT INTO operations VALUES (?, ?, ?, ?, ?, ?, ?)", ROWS)
    return db


DB = _database()  # read-only after setup; shared so hypothesis examples stay cheap


def select(text: str) -> set[str]:
    return select_expr(parse(text))


def select_expr(expr: Expr | None) -> set[str]:
    compiled = compile_filter(expr, Dialect.SQLITE)
    rows = DB.execute(f"SELECT name FROM operations WHERE {compiled.sql}", compiled.params)
    return {name for (name,) in rows}


# -- the reference: MemoryStore's evaluator must select exactly what the SQL selects -----


def reference(expr: Expr | None) -> set[str]:
    keys = (*COLUMNS, "state")
    rows = [dict(zip(keys, row, strict=True)) for row in ROWS]
    return {str(r["name"]) for r in rows if matches(expr, r)}


# -- parsing --------------------------------------------------------------------------


def test_empty_filter_is_none_and_selects_everything() -> None:
    assert parse("") is None
    assert parse("   \t") is None
    assert canonical(None) == ""
    assert compile_filter(None, Dialect.SQLITE).sql == "1=1"
    assert compile_filter(None, Dialect.SPANNER).sql == "TRUE"
    assert select("") == {row[0] for row in ROWS}


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


# -- execution on SQLite --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("done", {"a2", "b1", "b2", "c1"}),
        ("NOT done", {"a1", "A1", "x%_y", "empty"}),
        ("done = false", {"a1", "A1", "x%_y", "empty"}),
        ("done error.code = 1", {"b1"}),
        ("error.code = 1 OR error.code = 13", {"b1", "b2"}),
        ("error.code != 1", {"b2", "c1"}),  # operations without error do not match
        ("NOT error.code = 1", ALL - {"b1"}),  # ... but NOT flips "false" to "true"
        ("error.code:*", {"b1", "b2", "c1"}),
        ("-error.code:*", ALL - {"b1", "b2", "c1"}),
        ("error.code < 0", {"c1"}),
        ('name = "operations/a*"', {"a1", "a2"}),  # case-sensitive prefix
        ('name = "operations/A*"', {"A1"}),
        ('name != "operations/a*"', ALL - {"a1", "a2"}),
        ('name = "operations/x%*"', {"x%_y"}),  # LIKE metacharacters are plain text
        ('name = "operations/x_*"', set()),
        ('name = "operations/x%_y"', {"x%_y"}),
        ('name:"%"', {"x%_y"}),
        ('name:"_"', {"x%_y"}),
        ("name:A", {"A1"}),
        ('name = "*"', ALL),
        ('name:""', ALL),
        (f'metadata.@type = "type.googleapis.com/{RUN}"', {"a1", "a2", "x%_y", "c1"}),
        (f"metadata.@type = {CLUSTER}", {"b1", "b2"}),
        ('metadata.@type:"Cluster"', {"b1", "b2"}),
        ("metadata.@type:*", ALL - {"A1", "empty"}),  # NULL and "" are both absent
        ("metadata.state = TERMINATED", {"a2", "b1", "c1"}),
        ("metadata.state != TERMINATED", {"a1", "b2", "x%_y", "empty"}),
        ('create_time >= "2024-01-01T00:00:00Z"', ALL - {"x%_y", "empty"}),
        ('create_time < "2024-01-01T00:00:00Z"', {"x%_y", "empty"}),
        ('create_time = "2024-01-01T01:00:00+01:00"', {"a1", "c1"}),
        (
            'create_time > "2023-12-31T23:59:59.999998Z" create_time < "2024-01-01T00:00:00Z"',
            {"x%_y"},
        ),
        ('create_time <= "1970-01-01T00:00:00Z"', {"empty"}),
        ("update_time > '1970-01-01T00:00:00.000007Z'", {"c1"}),
        ("done AND error.code = 1 OR error.code = 13", {"b1", "b2"}),
        ("(done AND error.code = 1) OR NOT done", {"b1", "a1", "A1", "x%_y", "empty"}),
    ],
)
def test_sql_selects_the_expected_operations(text: str, names: set[str]) -> None:
    expected = {f"operations/{n}" for n in names}
    assert select(text) == expected
    assert reference(parse(text)) == expected  # the oracle agrees with the table


def test_sql_never_contains_values() -> None:
    nasty = "x'; DROP TABLE operations; --"
    for dialect in Dialect:
        compiled = compile_filter(parse(f'name = "{nasty}" OR name:"{nasty}"'), dialect)
        assert nasty not in compiled.sql
        assert set(compiled.params.values()) == {nasty}
    assert select(f'name = "{nasty}"') == set()


def test_spanner_sql_shape() -> None:
    expr = parse(
        'done name = "operations/a*" name:"b" error.code != 1 metadata.state:* '
        'create_time > "2024-01-01T00:00:00Z"'
    )
    compiled = compile_filter(expr, Dialect.SPANNER)
    assert ":p" not in compiled.sql
    assert compiled.params == {
        "p0": True,
        "p1": "operations/a",
        "p2": "b",
        "p3": 1,
        "p4": us("2024-01-01T00:00:00Z"),
    }
    for name in compiled.params:
        assert f"@{name}" in compiled.sql
    assert "(done IS NOT NULL AND done = @p0)" in compiled.sql
    assert "STARTS_WITH(name, @p1)" in compiled.sql
    assert "STRPOS(name, @p2) > 0" in compiled.sql
    assert "(error_code IS NOT NULL AND error_code <> @p3)" in compiled.sql
    assert "(state IS NOT NULL AND state <> '')" in compiled.sql
    assert "create_time_us > @p4" in compiled.sql
    assert "LIKE" not in compiled.sql
    sqlite = compile_filter(expr, Dialect.SQLITE)
    assert sqlite.params == compiled.params
    assert sqlite.sql.count(":p") >= 5 and "@" not in sqlite.sql


# -- properties -----------------------------------------------------------------------

_STRING_FIELDS = ["name", "metadata.@type", "metadata.state"]
_CHARS = st.text(alphabet="ab%_*\\\"' /.AB", max_size=6)


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_leaf = st.one_of(
    st.sampled_from(["done", "done = true", "done!=false", "done = FALSE", "error.code:*"]),
    st.builds(
        "{} {} {}".format,
        st.sampled_from(_STRING_FIELDS),
        st.sampled_from(["=", "!=", "<", ">", "<=", ">=", ":"]),
        _CHARS.filter(lambda v: not v.endswith("*")).map(_quoted),
    ),
    st.builds("{}={}".format, st.sampled_from(_STRING_FIELDS), _CHARS.map(_quoted)),
    st.builds("{}:*".format, st.sampled_from(_STRING_FIELDS)),
    st.builds(
        "error.code {} {}".format,
        st.sampled_from(["=", "!=", "<", ">", "<=", ">="]),
        st.integers(-3, 14),
    ),
    st.builds(
        "{} {} {}".format,
        st.sampled_from(["create_time", "update_time"]),
        st.sampled_from(["=", "!=", "<", ">", "<=", ">="]),
        st.sampled_from([r[4] for r in ROWS] + [r[5] for r in ROWS] + [-1, 2**40])
        .flatmap(lambda t: st.sampled_from([t - 1, t, t + 1]))
        .map(lambda t: f'"{rfc3339.from_micros(t)}"'),
    ),
)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds("{}{}{}".format, children, st.sampled_from([" AND ", " OR ", " "]), children),
        children.map("({})".format),
        children.map("NOT ({})".format),
        children.map("-({})".format),
    )


well_typed = st.recursive(_leaf, _combine, max_leaves=10)
fast = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fast
@given(well_typed)
def test_well_typed_filters_compile_and_match_the_reference(text: str) -> None:
    try:
        expr = parse(text)
    except InvalidArgument as error:
        assert "nested deeper" in error.message or "more than" in error.message
        return
    assert expr is not None
    assert select_expr(expr) == reference(expr)
    again = parse(canonical(expr))
    assert again == expr
    assert canonical(again) == canonical(expr)
    spanner = compile_filter(expr, Dialect.SPANNER)
    assert spanner.params == compile_filter(expr, Dialect.SQLITE).params


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
    assert select_expr(expr) == reference(expr)  # and the SQL runs
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
