"""AIP-160 filters evaluated in Python, with exactly the semantics of the stores' SQL.

:class:`lro_server.testing.memory_store.MemoryStore` lists with :func:`matches`, as does
the Spanner store for the rows its label index names (read by key); the filter tests hold
it against the SQL the stores run, so all select the same operations:

* Logic is two-valued: a test of an unset field (None, e.g. ``error_code`` of an operation
  without error) is false whatever the operator, ``!=`` included, and ``NOT`` flips it.
* Strings compare case-sensitively by code point (the order of their UTF-8 bytes, which
  is what SQLite's BINARY collation and Spanner compare); a prefix (``= "abc*"``) and a
  substring (``:"abc"``) are plain text, without metacharacters.
* ``field:*`` is presence: not None, and for strings not empty.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from lro_server.core.filter_ast import And, Compare, Expr, FieldSpec, FieldType, Has, Not, Op, Or
from lro_server.core.labels import KEY_COLUMNS
from lro_server.core.record import OperationRecord

#: A comparable value of a filterable column (None: unset); ``labels`` holds the map.
Value = bool | int | str | None | Mapping[str, str]

# Operands are of one type (the parser checks the literal against the field's type).
_OPS: dict[Op, Callable[[Any, Any], Any]] = {
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
    Op.LT: operator.lt,
    Op.GT: operator.gt,
    Op.LE: operator.le,
    Op.GE: operator.ge,
}


def matches(expr: Expr | None, row: Mapping[str, Value]) -> bool:
    """Whether ``row`` is selected by ``expr`` (None selects everything).

    Args:
        expr: A tree from ``lro_server.core.filter.parse``.
        row: The filterable columns (``FieldSpec.column``) of one operation.

    Raises:
        KeyError: ``expr`` names a column that ``row`` lacks.
    """
    return expr is None or _matches(expr, row)


def filter_row(record: OperationRecord) -> dict[str, Value]:
    """The filterable columns of ``record``, named as in ``OPERATION_FIELDS``."""
    return {
        "done": record.done,
        "name": record.name,
        "metadata_type": record.metadata_type,
        "state": record.state,
        "error_code": record.error_code,
        "create_time_us": record.create_time_us,
        "update_time_us": record.update_time_us,
        **{column: record.keys.column(column) for column in KEY_COLUMNS},
        "labels": dict(record.labels),
    }


def _actual(spec: FieldSpec, row: Mapping[str, Value]) -> bool | int | str | None:
    """The value a leaf tests: the column, or for ``labels.<key>`` that label (None when
    the operation has no such label)."""
    value = row[spec.column]
    if spec.label:
        assert isinstance(value, Mapping)
        return value.get(spec.label)
    assert not isinstance(value, Mapping)
    return value


def _matches(expr: Expr, row: Mapping[str, Value]) -> bool:
    match expr:
        case Compare():
            return _compare(expr, _actual(expr.field, row))
        case Has(field=spec, value=value):
            actual = _actual(spec, row)
            if actual is None:
                return False
            if value is None:  # field:* -- present; an empty string counts as absent
                return actual != "" if spec.type is FieldType.STRING else True
            return isinstance(actual, str) and value in actual
        case Not(operand=operand):
            return not _matches(operand, row)
        case And(operands=operands):
            return all(_matches(o, row) for o in operands)
        case Or(operands=operands):
            return any(_matches(o, row) for o in operands)
    raise TypeError(f"not a filter node: {expr!r}")  # pragma: no cover


def _compare(expr: Compare, actual: Value) -> bool:
    if actual is None:
        return False
    if expr.prefix:
        if not isinstance(actual, str) or not isinstance(expr.value, str):
            return False
        return actual.startswith(expr.value) == (expr.op is Op.EQ)
    return bool(_OPS[expr.op](actual, expr.value))
