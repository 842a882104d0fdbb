"""What an operation's metadata says about its progress, read the same way for every family.

The metadata ``Any`` is unpacked with the default descriptor pool (every message of
``lro_server._proto`` is imported, so all our families are known), and the fields every
family shares by convention are read: ``state`` / ``life_cycle_state`` / ``status``,
``result_state``, ``state_message``, ``progress_percent``, a ``*_url`` link, ``create_time``
and ``end_time``, and per-item states from ``tasks`` (job runs), ``steps`` (chains) or
``libraries``. A metadata type this client does not know is shown by name only.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf import any_pb2, descriptor_pool, json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

#: Repeated fields whose items have their own state, in the order they are looked for.
ITEM_FIELDS = ("tasks", "steps", "libraries")
#: One item of each field, as the progress summary names it.
SINGULAR = {"tasks": "task", "steps": "step", "libraries": "library"}
#: States (or results) of an item whose work is done, failed, or that never ran.
ITEM_DONE = frozenset(
    {
        "SUCCESS",
        "SUCCEEDED",
        "SUCCESS_WITH_FAILURES",
        "EXCLUDED",
        "INSTALLED",
        "UNINSTALL_ON_RESTART",
    }
)
ITEM_FAILED = frozenset(
    {
        "FAILED",
        "TIMEDOUT",
        "TIMED_OUT",
        "CANCELED",
        "CANCELLED",
        "INTERNAL_ERROR",
        "ERROR",
        "MAXIMUM_CONCURRENT_RUNS_REACHED",
        "DISABLED",
    }
)
ITEM_SKIPPED = frozenset({"SKIPPED", "UPSTREAM_FAILED", "UPSTREAM_CANCELED"})
ITEM_RUNNING = frozenset({"RUNNING", "TERMINATING", "INSTALLING", "RESOLVING"})
_STATE_FIELDS = ("state", "life_cycle_state", "status")
_KEY_FIELDS = ("task_key", "name", "library", "key")
GOOD_STATES = {
    "SUCCESS",
    "SUCCEEDED",
    "TERMINATED",
    "RUNNING",
    "INSTALLED",
    "COMPLETED",
    "FINISHED",
}
BAD_STATES = {
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


# -- a generic reading of metadata -----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Item:
    """One task, step or library and its state."""

    key: str
    state: str
    result: str = ""
    message: str = ""

    @property
    def outcome(self) -> str:
        """``done``, ``failed``, ``skipped``, ``running`` or ``waiting``."""
        verdict = self.result or self.state
        if self.state == "INTERNAL_ERROR" or verdict in ITEM_FAILED:
            return "failed"
        if verdict in ITEM_DONE:
            return "done"
        if verdict in ITEM_SKIPPED:
            return "skipped"
        return "running" if self.state in ITEM_RUNNING else "waiting"


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
    created_at: datetime | None = None
    ended_at: datetime | None = None

    def count(self, outcome: str) -> int:
        """How many items have ``outcome`` (see :attr:`Item.outcome`)."""
        return sum(1 for item in self.items if item.outcome == outcome)

    @property
    def done_percent(self) -> int | None:
        """Share of items done (successfully), else the metadata's own percentage."""
        if self.items:
            return self.count("done") * 100 // len(self.items)
        return self.percent

    @property
    def failed(self) -> bool:
        """Whether an item failed."""
        return any(item.outcome == "failed" for item in self.items)

    def summary(self, finished: bool = False) -> str:
        """``tasks 2/4 done, 1 running``; ``steps 1/3 done, step 2 failed, 1 skipped``."""
        if not self.items:
            return ""
        label, one = self.items_label, SINGULAR.get(self.items_label, "item")
        parts = [f"{label} {self.count('done')}/{len(self.items)} done"]
        failed = [i for i, item in enumerate(self.items) if item.outcome == "failed"]
        running = [i for i, item in enumerate(self.items) if item.outcome == "running"]
        if failed:
            parts.append(f"{one} {self._name(failed[0])} failed")
        elif running and not finished:
            parts.append(
                f"{one} {self._name(running[0])} running"
                if label == "steps" or len(running) == 1
                else f"{len(running)} running"
            )
        skipped = self.count("skipped")
        if skipped:
            parts.append(f"{skipped} skipped")
        return ", ".join(parts)

    def _name(self, index: int) -> str:
        # Chain steps are said by their place; tasks and libraries by their key.
        return str(index + 1) if self.items_label == "steps" else self.items[index].key

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
    created_at = ended_at = None
    if "create_time" in fields and metadata.HasField("create_time"):
        created = _when(metadata.create_time)  # type: ignore[attr-defined]
        created_at = metadata.create_time.ToDatetime(tzinfo=UTC)  # type: ignore[attr-defined]
    if "end_time" in fields and metadata.HasField("end_time"):
        ended_at = metadata.end_time.ToDatetime(tzinfo=UTC)  # type: ignore[attr-defined]
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
        created_at=created_at,
        ended_at=ended_at,
    )


def _when(timestamp: Any) -> str:
    moment: datetime = timestamp.ToDatetime(tzinfo=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")
