"""SQL fragments shared by the SQL stores: the keyset condition, and pages run on SQLite."""

from __future__ import annotations

import sqlite3

import pytest

from lro_server.core.filter import canonical, parse
from lro_server.core.pagetoken import Cursor, decode, encode
from lro_server.storage.filter_sql import compile_filter
from lro_server.storage.sql import Dialect, ParamBuilder, SqlFilter, keyset_condition

KEY = b"k" * 32


def test_keyset_sql_shapes() -> None:
    cursor = Cursor(5, "operations/x")
    assert keyset_condition(cursor, Dialect.SQLITE) == SqlFilter(
        "(create_time_us < :cursor_time_us OR "
        "(create_time_us = :cursor_time_us AND name < :cursor_name))",
        {"cursor_time_us": 5, "cursor_name": "operations/x"},
    )
    spanner = keyset_condition(cursor, Dialect.SPANNER)
    assert spanner.sql == (
        "(create_time_us < @cursor_time_us OR "
        "(create_time_us = @cursor_time_us AND name < @cursor_name))"
    )
    with pytest.raises(ValueError, match="twice"):
        spanner.and_(spanner)


def test_pages_cover_every_row_once_on_sqlite() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE operations (name TEXT PRIMARY KEY, done INTEGER, create_time_us INT)")
    rows = [(f"operations/{i:02d}", i % 3 != 0, (i // 4) * 10) for i in range(23)]  # ties
    db.executemany("INSERT INTO operations VALUES (?, ?, ?)", rows)
    expr = parse("done")
    where = compile_filter(expr, Dialect.SQLITE)
    expected = sorted(
        ((t, n) for n, d, t in rows if d), reverse=True
    )  # the listing order: create_time_us DESC, name DESC
    seen: list[tuple[int, str]] = []
    next_token = ""
    for _ in range(100):
        condition = where
        if next_token:
            cursor = decode(KEY, next_token, filter_canonical=canonical(expr), scope="s")
            condition = where.and_(keyset_condition(cursor, Dialect.SQLITE))
        page = db.execute(
            f"SELECT create_time_us, name FROM operations WHERE {condition.sql}"
            " ORDER BY create_time_us DESC, name DESC LIMIT 4",
            condition.params,
        ).fetchall()
        seen.extend(page)
        if len(page) < 4:
            break
        next_token = encode(
            KEY,
            filter_canonical=canonical(expr),
            scope="s",
            last_create_time_us=page[-1][0],
            last_name=page[-1][1],
        )
    assert seen == expected


def test_fragments_combine_only_with_distinct_parameter_names() -> None:
    a = SqlFilter("x = :p0", {"p0": 1})
    assert a.and_(SqlFilter("y = :q0", {"q0": 2})) == SqlFilter(
        "(x = :p0) AND (y = :q0)", {"p0": 1, "q0": 2}
    )
    with pytest.raises(ValueError, match="twice"):
        a.and_(a)
    params = ParamBuilder(Dialect.SPANNER)
    assert (params.add(True), params.named("n", "v"), params.add(3)) == ("@p0", "@n", "@p2")
    with pytest.raises(ValueError, match="already set"):
        params.named("n", "w")
