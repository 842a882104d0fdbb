"""SQL fragments with named parameters, and the rows both SQL stores (SQLite and Spanner)
read alike.

Both stores build their WHERE clauses from these fragments (list filters from
:mod:`lro_server.storage.filter_sql`, the keyset cursor from :func:`keyset_condition`),
so they select alike; their compare-and-set UPDATE returns :data:`UPDATE_RETURNS`, read
back by :func:`updated_record`. Values always travel as named parameters,
never inside the SQL text. The placeholder syntax is the only dialect difference
handled here: ``:name`` for SQLite, ``@name`` for Spanner GoogleSQL. Spanner's
parameter types are derived by the store from the Python values (bool, int, str).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lro_server.core.pagetoken import Cursor
from lro_server.core.record import OperationRecord
from lro_server.core.store import EXPIRY_START, ExpiryCursor

#: Python types a parameter may have; both stores map each to one SQL type.
ParamValue = bool | int | str


@dataclass(frozen=True, slots=True)
class LabelTable:
    """Where a store keeps labels: one row per (operation, key) with ``label_key`` and
    ``label_value`` columns.

    Attributes:
        table: The table's name.
        name: Its column holding the operation's name.
        create_time: Its copy of the operation's creation time (the listing order).
    """

    table: str
    name: str
    create_time: str


class Dialect(enum.Enum):
    """The SQL dialects the stores speak."""

    SQLITE = "sqlite"
    SPANNER = "spanner"

    def placeholder(self, name: str) -> str:
        """The text that refers to parameter ``name`` in this dialect."""
        return f":{name}" if self is Dialect.SQLITE else f"@{name}"

    @property
    def labels(self) -> LabelTable:
        """This dialect's label table."""
        if self is Dialect.SQLITE:
            return LabelTable("operation_labels", "op_name", "op_create_time_us")
        return LabelTable("OperationLabels", "key", "create_time_us")

    @property
    def true(self) -> str:
        """An always-true condition (``1=1`` keeps old SQLite versions happy)."""
        return "1=1" if self is Dialect.SQLITE else "TRUE"


@dataclass(frozen=True, slots=True)
class SqlFilter:
    """A WHERE fragment and the named parameters it refers to.

    Attributes:
        sql: The condition, safe to splice into ``WHERE (...)``.
        params: Parameter name (without ``:``/``@``) to value.
    """

    sql: str
    params: dict[str, object] = field(default_factory=dict)

    def and_(self, other: SqlFilter) -> SqlFilter:
        """Both conditions; parameter names must not collide.

        Raises:
            ValueError: Both fragments use a parameter of the same name.
        """
        clash = self.params.keys() & other.params.keys()
        if clash:
            raise ValueError(f"parameter names used twice: {sorted(clash)}")
        return SqlFilter(f"({self.sql}) AND ({other.sql})", {**self.params, **other.params})


class ParamBuilder:
    """Hands out numbered parameter names (``p0``, ``p1``, ...) and records values.

    Args:
        dialect: Decides the placeholder syntax.
        prefix: Name prefix; fragments that will be combined need distinct prefixes.
    """

    def __init__(self, dialect: Dialect, prefix: str = "p") -> None:
        self.dialect = dialect
        self._prefix = prefix
        self.params: dict[str, object] = {}

    def add(self, value: ParamValue) -> str:
        """Record ``value`` under a fresh name and return its placeholder."""
        name = f"{self._prefix}{len(self.params)}"
        self.params[name] = value
        return self.dialect.placeholder(name)

    def named(self, name: str, value: ParamValue) -> str:
        """Record ``value`` under an explicit ``name`` and return its placeholder."""
        if name in self.params:
            raise ValueError(f"parameter {name!r} already set")
        self.params[name] = value
        return self.dialect.placeholder(name)


def keyset_condition(
    cursor: Cursor,
    dialect: Dialect,
    *,
    time_column: str = "create_time_us",
    name_column: str = "name",
) -> SqlFilter:
    """The rows after ``cursor`` in ``(create_time_us DESC, name DESC)`` order.

    A listing driven by another table (the label index) passes that table's copies of
    the two columns, so the cursor bounds the index it reads.

    Parameters are named ``cursor_time_us`` and ``cursor_name`` so the fragment can be
    combined with a compiled filter (``p0``, ``p1``, ...) through ``SqlFilter.and_``.
    """
    params = ParamBuilder(dialect)
    time = params.named("cursor_time_us", cursor.create_time_us)
    name = params.named("cursor_name", cursor.name)
    sql = f"({time_column} < {time} OR ({time_column} = {time} AND {name_column} < {name}))"
    return SqlFilter(sql, params.params)


#: What the compare-and-set UPDATE of both stores returns, in this order: the version and
#: update time it set, and what ``update`` keeps from the stored row.
UPDATE_RETURNS = (
    "version",
    "create_time_us",
    "update_time_us",
    "owner",
    "request_id",
    "method",
    "lease_holder",
    "lease_expire_us",
)


def updated_record(record: OperationRecord, row: Sequence[Any]) -> OperationRecord:
    """``record`` as its update stored it, from the :data:`UPDATE_RETURNS` columns at the
    start of ``row`` (in order; more may follow)."""
    version, create_us, update_us, owner, request_id, method, holder, expire_us = row[:8]
    return dataclasses.replace(
        record,
        version=version,
        create_time_us=create_us,
        update_time_us=update_us,
        owner=owner,
        request_id=request_id or "",  # Spanner stores no id as NULL
        method=method,
        lease_holder=holder,
        lease_expire_us=expire_us,
    )


def expired_params(before_us: int, after: ExpiryCursor | None, limit: int) -> dict[str, Any]:
    """The parameters of both stores' ``EXPIRED`` query."""
    after_us, after_name = after or EXPIRY_START
    return {"before": before_us, "after_us": after_us, "after_name": after_name, "limit": limit}
