"""AIP-160 filters compiled to SQL and run on real SQLite, held against the Python evaluator
of the in-memory store (all stores must select the same operations)."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lro_server.core import rfc3339
from lro_server.core.errors import InvalidArgument
from lro_server.core.filter import Expr, canonical, parse
from lro_server.core.filter_eval import matches
from lro_server.storage.filter_sql import compile_filter
from lro_server.storage.sql import Dialect

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


def test_no_filter_selects_everything() -> None:
    assert compile_filter(None, Dialect.SQLITE).sql == "1=1"
    assert compile_filter(None, Dialect.SPANNER).sql == "TRUE"
    assert select("") == {row[0] for row in ROWS}
    assert reference(None) == {row[0] for row in ROWS}


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
def test_any_parsed_text_compiles_and_matches_the_reference(text: str) -> None:
    try:
        expr = parse(text)
    except InvalidArgument as error:
        assert error.metadata["field"] == "filter"
        assert 0 <= int(error.metadata["position"]) <= len(text)
        return
    assert select_expr(expr) == reference(expr)  # and the SQL runs
    assert parse(canonical(expr)) == expr
