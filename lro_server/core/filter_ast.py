"""The typed tree of an AIP-160 filter, the filterable-field registry, and ``canonical``.

``filter.parse`` builds these nodes; the stores evaluate them (the SQL stores through
``lro_server.storage.filter_sql``). Leaves are typed
already (timestamps as INT64 microseconds since the epoch), so consumers never see raw
filter text.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from lro_server.core import rfc3339
from lro_server.core.labels import is_label_key

_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class FieldType(enum.Enum):
    """The value types a filterable field can have."""

    BOOL = "bool"
    STRING = "string"
    INT = "int"
    TIMESTAMP = "timestamp"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One filterable field and where the stores keep it.

    Attributes:
        name: The path as users write it, e.g. ``metadata.@type``.
        type: The value type; decides the comparators and literals allowed.
        column: The column the stores keep the field in (TIMESTAMP columns hold INT64
            micros since the epoch).
        normalize: Maps a string literal to the stored form (STRING fields only).
        label: The label key of a ``labels.<key>`` field ("" for other fields); its
            values live in the stores' label index, not in ``column``.
    """

    name: str
    type: FieldType
    column: str
    normalize: Callable[[str], str] | None = None
    label: str = ""

    def __post_init__(self) -> None:
        # The SQL stores splice the column into their queries: insist on a plain name.
        if not _COLUMN.fullmatch(self.column):
            raise ValueError(f"column {self.column!r} is not a plain SQL identifier")


def _type_name(value: str) -> str:
    # "type.googleapis.com/lro.databricks.v1.RunMetadata" -> "lro.databricks.v1.RunMetadata"
    return value.rsplit("/", 1)[-1]


def field_registry(specs: Iterable[FieldSpec]) -> Mapping[str, FieldSpec]:
    """Index field specs by name (the shape ``parse`` takes)."""
    registry: dict[str, FieldSpec] = {}
    for spec in specs:
        if spec.name in registry:
            raise ValueError(f"field {spec.name!r} declared twice")
        registry[spec.name] = spec
    return registry


#: The filterable fields of ``google.longrunning.Operation`` in our stores.
OPERATION_FIELDS: Mapping[str, FieldSpec] = field_registry(
    [
        FieldSpec("done", FieldType.BOOL, "done"),
        FieldSpec("name", FieldType.STRING, "name"),
        FieldSpec("metadata.@type", FieldType.STRING, "metadata_type", _type_name),
        FieldSpec("metadata.state", FieldType.STRING, "state"),
        FieldSpec("error.code", FieldType.INT, "error_code"),
        FieldSpec("create_time", FieldType.TIMESTAMP, "create_time_us"),
        FieldSpec("update_time", FieldType.TIMESTAMP, "update_time_us"),
        # The Databricks ids behind an operation (core.labels.SearchKeys), indexed.
        FieldSpec("metadata.job_id", FieldType.INT, "job_id"),
        FieldSpec("metadata.run_id", FieldType.INT, "run_id"),
        FieldSpec("metadata.cluster_id", FieldType.STRING, "cluster_id"),
        FieldSpec("metadata.warehouse_id", FieldType.STRING, "warehouse_id"),
        FieldSpec("metadata.pipeline_id", FieldType.STRING, "pipeline_id"),
    ]
)

#: Prefix of label fields: ``labels.<key>`` names the label ``<key>`` (a string).
LABELS_PREFIX = "labels."


def label_field(name: str) -> FieldSpec | None:
    """The spec of ``labels.<key>`` (None when ``name`` is not a valid label field)."""
    if not name.startswith(LABELS_PREFIX):
        return None
    key = name[len(LABELS_PREFIX) :]
    if not is_label_key(key):
        return None
    return FieldSpec(name, FieldType.STRING, "labels", label=key)


def label_equality(expr: Expr | None) -> Compare | None:
    """A top-level AND term ``labels.<key> = "value"`` (no wildcard), if ``expr`` has one:
    stores may then read their label index first, since every match carries that label."""
    terms = expr.operands if isinstance(expr, And) else (expr,)
    for term in terms:
        if isinstance(term, Compare) and term.field.label and term.op is Op.EQ and not term.prefix:
            return term
    return None


def without(expr: Expr | None, term: Expr) -> Expr | None:
    """``expr`` without its top-level AND term ``term`` (None when nothing is left): for
    a store whose index already guarantees that term."""
    if expr == term:
        return None
    if isinstance(expr, And):
        rest = tuple(o for o in expr.operands if o != term)
        if len(rest) != len(expr.operands):
            return rest[0] if len(rest) == 1 else And(rest)
    return expr


def key_equality(expr: Expr | None, columns: Iterable[str]) -> Compare | None:
    """A top-level AND term ``<column> = value`` on one of ``columns`` (no wildcard)."""
    wanted = set(columns)
    terms = expr.operands if isinstance(expr, And) else (expr,)
    for term in terms:
        if (
            isinstance(term, Compare)
            and term.field.column in wanted
            and not term.field.label
            and term.op is Op.EQ
            and not term.prefix
        ):
            return term
    return None


class Op(enum.Enum):
    """Comparators; the value is the filter syntax."""

    EQ = "="
    NE = "!="
    LT = "<"
    GT = ">"
    LE = "<="
    GE = ">="


@dataclass(frozen=True, slots=True)
class Compare:
    """``field op value``; ``value`` is typed (TIMESTAMP: INT64 micros since the epoch).

    ``prefix`` marks a STRING ``=``/``!=`` whose value ended in the ``*`` wildcard
    (``value`` is then the prefix, without the star).
    """

    field: FieldSpec
    op: Op
    value: bool | int | str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Has:
    """``field:value`` (substring of a STRING field) or ``field:*`` (``value`` None)."""

    field: FieldSpec
    value: str | None


@dataclass(frozen=True, slots=True)
class Not:
    """Negation of ``operand`` (two-valued: see the module docstring)."""

    operand: Expr


@dataclass(frozen=True, slots=True)
class And:
    """All of ``operands`` (two or more, none an ``And``)."""

    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """Any of ``operands`` (two or more, none an ``Or``)."""

    operands: tuple[Expr, ...]


Expr = Compare | Has | Not | And | Or


def requires_unfinished(expr: Expr | None) -> bool:
    """Whether every operation ``expr`` matches is unfinished (``done = false`` is one of
    its top-level AND terms): stores may then read an index of unfinished operations."""
    terms = expr.operands if isinstance(expr, And) else (expr,)
    return any(
        isinstance(t, Compare) and t.field.column == "done" and t.op is Op.EQ and t.value is False
        for t in terms
    )


def canonical(expr: Expr | None) -> str:
    """The normal text of a filter: equal filters print equally; it parses back to ``expr``.

    Args:
        expr: A tree from ``parse`` (None for no filter, printed as ``""``).
    """
    if expr is None:
        return ""
    return _render(expr)


def _render(expr: Expr) -> str:
    match expr:
        case Compare(field=spec, op=op, value=value, prefix=prefix):
            return f"{spec.name}{op.value}{_render_value(spec.type, value, prefix=prefix)}"
        case Has(field=spec, value=None):
            return f"{spec.name}:*"
        case Has(field=spec, value=str(value)):
            return f"{spec.name}:{_quote(value)}"
        case Not(operand=Not() as operand):  # the grammar has no "NOT NOT x"
            return f"NOT ({_render(operand)})"
        case Not(operand=operand):
            return f"NOT {_group(operand)}"
        case And(operands=operands):
            return " AND ".join(_group(o) for o in operands)
        case Or(operands=operands):
            return " OR ".join(_group(o) for o in operands)
    raise TypeError(f"not a filter node: {expr!r}")  # pragma: no cover


def _group(expr: Expr) -> str:
    # Parenthesize every compound operand: unambiguous, and stable under reparsing.
    text = _render(expr)
    return f"({text})" if isinstance(expr, And | Or) else text


def _render_value(kind: FieldType, value: bool | int | str, *, prefix: bool = False) -> str:
    """Print a typed value as filter syntax (the inverse of the parser's typing)."""
    if kind is FieldType.BOOL:
        return "true" if value else "false"
    if kind is FieldType.INT:
        return str(value)
    if kind is FieldType.TIMESTAMP:
        assert isinstance(value, int)
        return f'"{rfc3339.from_micros(value)}"'
    assert isinstance(value, str)
    return _quote(value, wildcard=prefix)


def _quote(value: str, *, wildcard: bool = False) -> str:
    """Double-quote a string literal; a trailing literal ``*`` is escaped as ``\\*``."""
    body = value.replace("\\", "\\\\").replace('"', '\\"')
    body = body.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    if body.endswith("*"):
        body = body[:-1] + "\\*"
    return f'"{body}{"*" if wildcard else ""}"'
