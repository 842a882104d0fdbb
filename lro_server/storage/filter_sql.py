"""Compile a parsed AIP-160 filter to a SQL WHERE fragment for SQLite or Spanner.

Both dialects must select exactly the same operations, so the fragment avoids every
construct whose meaning differs between them:

* Logic is two-valued. Each leaf is ``(column IS NOT NULL AND <test>)``, never NULL,
  so ``NOT`` means "does not match" (AIP-160: a comparison with an unset field is
  false) instead of SQL's "unknown stays unknown".
* No ``LIKE``: SQLite's is case-insensitive for ASCII by default, Spanner's is not, and
  both need metacharacter escaping. Prefix and substring tests use functions without
  metacharacters: ``substr``/``instr`` in SQLite, ``STARTS_WITH``/``STRPOS`` in Spanner.
  Both compare case-sensitively, by characters of the stored UTF-8 text.
* Values are always named parameters (bool, int, str); timestamps are INT64
  microseconds since the epoch, the form both stores keep.
"""

from __future__ import annotations

from lro_server.core.filter_ast import And, Compare, Expr, FieldType, Has, Not, Op, Or
from lro_server.storage.sql import Dialect, ParamBuilder, SqlFilter

_SQL_OPS = {Op.EQ: "=", Op.NE: "<>", Op.LT: "<", Op.GT: ">", Op.LE: "<=", Op.GE: ">="}


def compile_filter(expr: Expr | None, dialect: Dialect) -> SqlFilter:
    """The WHERE fragment selecting the rows ``expr`` matches.

    Args:
        expr: A tree from ``filter.parse``; None (no filter) selects every row.
        dialect: The store's SQL dialect.

    Returns:
        The condition with parameters named ``p0``, ``p1``, ...
    """
    if expr is None:
        return SqlFilter(dialect.true, {})
    params = ParamBuilder(dialect, prefix="p")
    return SqlFilter(_compile(expr, params), params.params)


def _compile(expr: Expr, params: ParamBuilder) -> str:
    match expr:
        case Compare():
            return _compare(expr, params)
        case Has():
            return _has(expr, params)
        case Not(operand=operand):
            return f"NOT ({_compile(operand, params)})"
        case And(operands=operands):
            return "(" + " AND ".join(_compile(o, params) for o in operands) + ")"
        case Or(operands=operands):
            return "(" + " OR ".join(_compile(o, params) for o in operands) + ")"
    raise TypeError(f"not a filter node: {expr!r}")  # pragma: no cover


def _compare(expr: Compare, params: ParamBuilder) -> str:
    column = expr.field.column
    placeholder = params.add(expr.value)
    if expr.prefix:
        test = _starts_with(column, placeholder, params.dialect)
        if expr.op is Op.NE:
            test = f"NOT {test}"
    else:
        test = f"{column} {_SQL_OPS[expr.op]} {placeholder}"
    return f"({column} IS NOT NULL AND {test})"


def _has(expr: Has, params: ParamBuilder) -> str:
    column = expr.field.column
    if expr.value is None:  # field:* -- present; an empty string counts as absent
        if expr.field.type is FieldType.STRING:
            return f"({column} IS NOT NULL AND {column} <> '')"
        return f"({column} IS NOT NULL)"
    if not expr.value:  # every string contains "": skip the function call
        return f"({column} IS NOT NULL)"
    placeholder = params.add(expr.value)
    if params.dialect is Dialect.SQLITE:
        test = f"instr({column}, {placeholder}) > 0"
    else:
        test = f"STRPOS({column}, {placeholder}) > 0"
    return f"({column} IS NOT NULL AND {test})"


def _starts_with(column: str, placeholder: str, dialect: Dialect) -> str:
    if dialect is Dialect.SQLITE:
        # substr/length count characters of TEXT, so this is an exact, case-sensitive test.
        return f"(substr({column}, 1, length({placeholder})) = {placeholder})"
    return f"STARTS_WITH({column}, {placeholder})"
