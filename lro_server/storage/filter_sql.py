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
* A ``labels.<key>`` leaf is ``EXISTS`` over the label table (one row per label), with
  the leaf's test on the label's value: an operation without that label matches no
  comparison, as for any unset field.
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


def _label(expr: Compare | Has, params: ParamBuilder, test: str) -> str:
    """``test`` (on the column ``label_value``) for the operation's label of the leaf."""
    table = params.dialect.labels
    key = params.add(expr.field.label)
    return (
        f"EXISTS (SELECT 1 FROM {table.table} WHERE {table.name} = name"
        f" AND label_key = {key} AND {test})"
    )


def _compare(expr: Compare, params: ParamBuilder) -> str:
    if expr.field.label:
        return _label(expr, params, _compare_column(expr, "label_value", params))
    return (
        f"({expr.field.column} IS NOT NULL AND {_compare_column(expr, expr.field.column, params)})"
    )


def _compare_column(expr: Compare, column: str, params: ParamBuilder) -> str:
    placeholder = params.add(expr.value)
    if expr.prefix:
        test = _starts_with(column, placeholder, params.dialect)
        if expr.op is Op.NE:
            test = f"NOT {test}"
    else:
        test = f"{column} {_SQL_OPS[expr.op]} {placeholder}"
    return test


def _has(expr: Has, params: ParamBuilder) -> str:
    if expr.field.label:
        if not expr.value:  # present (non-empty for :*), or containing "": any value does
            return _label(expr, params, "label_value <> ''" if expr.value is None else "TRUE")
        placeholder = params.add(expr.value)
        if params.dialect is Dialect.SQLITE:
            return _label(expr, params, f"instr(label_value, {placeholder}) > 0")
        return _label(expr, params, f"STRPOS(label_value, {placeholder}) > 0")
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
