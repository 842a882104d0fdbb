"""What ``lro`` shows: operations as proto3 JSON, summaries, tables and live progress.

Metadata is read generically: the ``Any`` is unpacked with the default descriptor pool (every
message of ``lro_server._proto`` is imported, so all our families are known) and the fields
every family shares by convention are shown — ``state`` / ``life_cycle_state`` / ``status``,
``result_state``, ``state_message``, ``progress_percent``, a ``*_url`` link, and per-item
states from ``tasks`` (job runs), ``steps`` (chains) or ``libraries``. A metadata type this
client does not know is shown by name only.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import json
import pkgutil
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from google.longrunning import operations_pb2
from google.protobuf import any_pb2, descriptor_pool, json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from google.rpc import code_pb2
from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

#: Repeated fields whose items have their own state, in the order they are looked for.
ITEM_FIELDS = ("tasks", "steps", "libraries")
_STATE_FIELDS = ("state", "life_cycle_state", "status")
_KEY_FIELDS = ("task_key", "name", "library", "key")
_GOOD = {"SUCCESS", "SUCCEEDED", "TERMINATED", "RUNNING", "INSTALLED", "COMPLETED", "FINISHED"}
_BAD = {
    "FAILED",
    "INTERNAL_ERROR",
    "ERROR",
    "CANCELED",
    "CANCELLED",
    "TIMEDOUT",
    "TIMED_OUT",
    "SKIPPED",
    "UPSTREAM_FAILED",
}

_loaded = False


def load_known_types() -> None:
    """Import every generated module of ours so the descriptor pool knows their messages."""
    global _loaded  # noqa: PLW0603  an import side effect done once per process
    if _loaded:
        return
    for name in ("lro_server._proto.lro.databricks.v1", "lro_server._proto.lro.durable.v1"):
        package = importlib.import_module(name)
        for module in pkgutil.iter_modules(package.__path__):
            if module.name.endswith("_pb2"):
                importlib.import_module(f"{package.__name__}.{module.name}")
    _loaded = True


def unpack(value: any_pb2.Any) -> Message | None:
    """The message inside ``value``, or None when empty or of a type unknown here."""
    if not value.type_url:
        return None
    load_known_types()
    name = value.type_url.rsplit("/", 1)[-1]
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(name)
    except KeyError:
        return None
    message = GetMessageClass(descriptor)()
    return message if value.Unpack(message) else None


def type_name(value: any_pb2.Any) -> str:
    """Short name of the message in ``value`` (``RunMetadata``), "" when empty."""
    return value.type_url.rsplit(".", 1)[-1] if value.type_url else ""


# -- JSON -------------------------------------------------------------------------------


def to_json(message: Message) -> dict[str, Any]:
    """proto3 JSON of ``message``; an Any of an unknown type becomes its raw bytes."""
    load_known_types()
    try:
        return json_format.MessageToDict(message)
    except (TypeError, KeyError):
        # json_format cannot render an Any whose type it does not know: show it as bytes.
        if isinstance(message, operations_pb2.Operation):
            copy = operations_pb2.Operation()
            copy.CopyFrom(message)
            raw = {}
            for field in ("metadata", "response"):
                if copy.HasField(field):
                    value = getattr(copy, field)
                    raw[field] = {
                        "@type": value.type_url,
                        "value": base64.b64encode(value.value).decode(),
                    }
                    copy.ClearField(field)
            return {**json_format.MessageToDict(copy), **raw}
        raise


def dumps(value: Any) -> str:
    """Stable, indented JSON for scripts."""
    return json.dumps(value, indent=2, sort_keys=True)


# -- a generic reading of metadata -----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Item:
    """One task, step or library and its state."""

    key: str
    state: str
    result: str = ""
    message: str = ""


@dataclasses.dataclass(frozen=True)
class Progress:
    """What an operation's metadata says about its progress."""

    kind: str = ""
    state: str = ""
    result: str = ""
    message: str = ""
    percent: int | None = None
    url: str = ""
    created: str = ""
    items: tuple[Item, ...] = ()
    items_label: str = ""

    @property
    def label(self) -> str:
        """``STATE`` or ``STATE/RESULT``."""
        if self.result and self.result != self.state:
            return f"{self.state}/{self.result}" if self.state else self.result
        return self.state


def _text(message: Message, names: Sequence[str]) -> str:
    fields = message.DESCRIPTOR.fields_by_name
    for name in names:
        field = fields.get(name)
        if field is None:
            continue
        value = getattr(message, name)
        if field.is_repeated:
            text = "; ".join(str(v) for v in value) if field.type == field.TYPE_STRING else ""
        elif field.enum_type is not None:
            text = field.enum_type.values_by_number[value].name if value else ""
            text = "" if text.endswith("_UNSPECIFIED") else text
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            text = _struct_text(value) if message.HasField(name) else ""
        else:
            text = str(value) if value else ""
        if text:
            return text
    return ""


def _struct_text(value: Message) -> str:
    """A compact rendering of a Struct-like field (e.g. a library spec)."""
    try:
        data = json_format.MessageToDict(value)
    except (TypeError, KeyError):
        return ""
    if isinstance(data, dict) and len(data) == 1:
        kind, spec = next(iter(data.items()))
        if isinstance(spec, dict):
            spec = spec.get("package") or spec.get("coordinates") or next(iter(spec.values()), "")
        return f"{kind}:{spec}"
    return json.dumps(data, separators=(",", ":"))[:60]


def progress_of(metadata: Message | None) -> Progress:
    """Read the conventional fields of any metadata message."""
    if metadata is None:
        return Progress()
    fields = metadata.DESCRIPTOR.fields_by_name
    percent = None
    if "progress_percent" in fields:
        percent = int(metadata.progress_percent)  # type: ignore[attr-defined]
    url = next(
        (getattr(metadata, f.name) for f in metadata.DESCRIPTOR.fields if f.name.endswith("_url")),
        "",
    )
    created = ""
    if "create_time" in fields and metadata.HasField("create_time"):
        created = _when(metadata.create_time)  # type: ignore[attr-defined]
    items: tuple[Item, ...] = ()
    label = ""
    for name in ITEM_FIELDS:
        field = fields.get(name)
        if field is not None and field.is_repeated:
            label = name
            items = tuple(
                Item(
                    key=_text(item, _KEY_FIELDS) or str(index),
                    state=_text(item, _STATE_FIELDS),
                    result=_text(item, ("result_state",)),
                    message=_text(item, ("state_message", "messages")),
                )
                for index, item in enumerate(getattr(metadata, name))
            )
            break
    return Progress(
        kind=metadata.DESCRIPTOR.name,
        state=_text(metadata, _STATE_FIELDS),
        result=_text(metadata, ("result_state",)),
        message=_text(metadata, ("state_message", "health_summary")),
        percent=percent,
        url=str(url),
        created=created,
        items=items,
        items_label=label,
    )


def _when(timestamp: Any) -> str:
    moment: datetime = timestamp.ToDatetime(tzinfo=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def error_text(operation: operations_pb2.Operation) -> str:
    """``CODE: message`` of a failed operation, "" otherwise."""
    if not operation.HasField("error"):
        return ""
    code = operation.error.code
    name = code_pb2.Code.Name(code) if code in code_pb2.Code.values() else str(code)
    return f"{name}: {operation.error.message}"


# -- rich renderables -------------------------------------------------------------------------


def _style(state: str) -> str:
    words = set(state.replace("/", " ").split())
    if words & _BAD:
        return "red"
    if "SUCCESS" in words or "SUCCEEDED" in words or "INSTALLED" in words:
        return "green"
    return "yellow" if words & _GOOD else "cyan"


def list_table(operations: Sequence[operations_pb2.Operation]) -> Table:
    """The ``lro list`` table: name, done, state, type, created, error."""
    table = Table(show_edge=False, pad_edge=False)
    for column in ("name", "done", "state", "type", "created", "error"):
        table.add_column(column, overflow="fold")
    for operation in operations:
        progress = progress_of(unpack(operation.metadata))
        state = progress.label
        table.add_row(
            operation.name,
            "yes" if operation.done else "no",
            Text(state, style=_style(state)) if state else "",
            type_name(operation.metadata),
            progress.created,
            Text(error_text(operation), style="red"),
        )
    return table


def operation_view(operation: operations_pb2.Operation, elapsed: float | None = None) -> Group:
    """Summary of one operation: state, message, progress, link, tasks/steps, outcome."""
    progress = progress_of(unpack(operation.metadata))
    head = Table.grid(padding=(0, 1))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("operation", operation.name)
    if operation.metadata.type_url:
        head.add_row("type", type_name(operation.metadata))
    state = progress.label or ("DONE" if operation.done else "PENDING")
    head.add_row("state", Text(state, style=_style(state)))
    if progress.message:
        head.add_row("message", progress.message)
    if progress.url:
        head.add_row("link", progress.url)
    if elapsed is not None:
        head.add_row("elapsed", f"{elapsed:.0f}s")
    parts: list[RenderableType] = [head]
    if progress.percent is not None:
        bar = Table.grid(padding=(0, 1))
        bar.add_row(
            ProgressBar(total=100, completed=progress.percent, width=40), f"{progress.percent}%"
        )
        parts.append(bar)
    if progress.items:
        items = Table(title=progress.items_label, show_edge=False, title_justify="left")
        for column in ("key", "state", "message"):
            items.add_column(column, overflow="fold")
        for item in progress.items:
            label = f"{item.state}/{item.result}" if item.result else item.state
            items.add_row(item.key, Text(label, style=_style(label)), item.message)
        parts.append(items)
    if operation.done:
        outcome = error_text(operation)
        parts.append(
            Text(f"failed: {outcome}", style="bold red")
            if outcome
            else Text("succeeded", style="bold green")
        )
    return Group(*parts)


def progress_line(operation: operations_pb2.Operation) -> str:
    """One plain line per observed change, for logs and pipes (no terminal)."""
    progress = progress_of(unpack(operation.metadata))
    parts = [operation.name, progress.label or ("DONE" if operation.done else "PENDING")]
    if progress.percent is not None:
        parts.append(f"{progress.percent}%")
    if progress.items:
        done = sum(1 for item in progress.items if item.result or item.state in _BAD)
        parts.append(f"{progress.items_label} {done}/{len(progress.items)}")
        parts.extend(
            f"{item.key}={item.state}{'/' + item.result if item.result else ''}"
            for item in progress.items
        )
    if progress.message:
        parts.append(f"- {progress.message}")
    return " ".join(parts)
