"""What ``lro`` shows: operations as proto3 JSON, summaries, tables and live progress.

Metadata is read by ``client_progress`` the same way for every family; this module renders it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from google.longrunning import operations_pb2
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2
from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from lro_server.cli.client_progress import (
    BAD_STATES,
    GOOD_STATES,
    load_known_types,
    progress_of,
    type_name,
    unpack,
)

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
    if words & BAD_STATES:
        return "red"
    if "SUCCESS" in words or "SUCCEEDED" in words or "INSTALLED" in words:
        return "green"
    return "yellow" if words & GOOD_STATES else "cyan"


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


def elapsed(operation: operations_pb2.Operation, now: datetime | None = None) -> float | None:
    """Seconds since the operation was created (until it ended, once done); None: unknown."""
    progress = progress_of(unpack(operation.metadata))
    if progress.created_at is None:
        return None
    end = progress.ended_at if operation.done and progress.ended_at else now or datetime.now(UTC)
    return max(0.0, (end - progress.created_at).total_seconds())


def duration(seconds: float) -> str:
    """``42s``, ``3m 05s``, ``2h 01m``."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def outcome_text(operation: operations_pb2.Operation) -> str:
    """``succeeded`` or ``failed: CODE: message`` of a done operation ("" otherwise)."""
    if not operation.done:
        return ""
    error = error_text(operation)
    return f"failed: {error}" if error else "succeeded"


def operation_view(
    operation: operations_pb2.Operation, *, now: datetime | None = None, outcome: bool = True
) -> Group:
    """Summary of one operation: state, message, progress, link, tasks/steps, outcome.

    Progress is the share of tasks (or steps) done; a failure turns the bar red, so a failed
    run never shows a full green bar. ``outcome=False`` leaves the outcome line out (it is
    printed once, elsewhere).
    """
    progress = progress_of(unpack(operation.metadata))
    failed = bool(error_text(operation)) or progress.failed
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
    seconds = elapsed(operation, now)
    if seconds is not None:
        head.add_row("elapsed", duration(seconds))
    parts: list[RenderableType] = [head]
    percent = progress.done_percent
    if percent is not None:
        style = "red" if failed else "green" if percent == 100 else "yellow"
        bar = Table.grid(padding=(0, 1))
        bar.add_row(
            ProgressBar(
                total=100, completed=percent, width=40, complete_style=style, finished_style=style
            ),
            f"{percent}%",
            progress.summary(finished=operation.done),
        )
        parts.append(bar)
    if progress.items:
        items = Table(title=progress.items_label, show_edge=False, title_justify="left")
        for column in ("key", "state", "message"):
            items.add_column(column, overflow="fold")
        for item in progress.items:
            label = f"{item.state}/{item.result}" if item.result else item.state
            style = "dim" if item.outcome == "skipped" else _style(label)
            items.add_row(item.key, Text(label, style=style), item.message)
        parts.append(items)
    text = outcome_text(operation) if outcome else ""
    if text:
        parts.append(Text(text, style="bold red" if failed else "bold green"))
    return Group(*parts)


def progress_line(operation: operations_pb2.Operation) -> str:
    """One plain line per observed change, for logs and pipes (no terminal)."""
    progress = progress_of(unpack(operation.metadata))
    parts = [operation.name, progress.label or ("DONE" if operation.done else "PENDING")]
    percent = progress.done_percent
    if percent is not None:
        parts.append(f"{percent}%")
    if progress.items:
        parts.append(progress.summary(finished=operation.done))
        parts.extend(
            f"{item.key}={item.state}{'/' + item.result if item.result else ''}"
            for item in progress.items
        )
    if progress.message:
        parts.append(f"- {progress.message}")
    return " ".join(parts)
