"""Log setup: JSON lines for Cloud Logging, plain text in a terminal. Only the CLI calls it.

Each line carries the operation and trace bound in ``core.logcontext`` (per RPC, per poll):
in JSON as ``operation`` and Cloud Logging's ``logging.googleapis.com/trace`` / ``spanId`` /
``trace_sampled`` keys, in text as a ``[operations/…]`` suffix.

Nothing here logs requests or metadata; as a last line of defence, bearer tokens and
Databricks personal access tokens are masked in every message, and the Databricks SDK's
DEBUG output (which dumps request and response bodies) is held at INFO.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

from lro_server.core.logcontext import current_operation, current_trace

#: Python level → Cloud Logging severity.
_SEVERITY = {
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "WARNING": "WARNING",
    "ERROR": "ERROR",
    "CRITICAL": "CRITICAL",
}
#: Loggers that print payloads at DEBUG; never let them below INFO.
_PAYLOAD_LOGGERS = ("databricks.sdk", "urllib3.connectionpool", "google.auth.transport")
_SECRETS = re.compile(
    r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+|\bdapi[0-9a-f]{32}(-\d+)?\b|(\"?token\"?\s*[:=]\s*\"?)[^\s\",}]+"
)


def redact(text: str) -> str:
    """Mask bearer tokens, Databricks PATs and ``token=…`` values in ``text``."""
    return _SECRETS.sub(_mask, text)


def _mask(match: re.Match[str]) -> str:
    prefix = match.group(1) or match.group(3) or ""
    return f"{prefix}[REDACTED]"


class ContextFilter(logging.Filter):
    """Copies the bound operation and trace onto each record (``record.operation`` …)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate ``record``; never drops it."""
        record.operation = current_operation()
        trace = current_trace()
        record.trace_id = trace.trace_id if trace else ""
        record.span_id = trace.span_id if trace else ""
        record.trace_sampled = bool(trace and trace.sampled)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line with Cloud Logging's special keys.

    Args:
        trace_project: Google Cloud project for trace links; Cloud Logging only links a
            trace written as ``projects/P/traces/T``. Empty: the bare trace id.
    """

    def __init__(self, trace_project: str = "") -> None:
        super().__init__()
        self.trace_project = trace_project

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record``."""
        entry: dict[str, object] = {
            "severity": _SEVERITY.get(record.levelname, "DEFAULT"),
            "message": redact(record.getMessage()),
            "logger": record.name,
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
        }
        operation = getattr(record, "operation", "")
        if operation:
            entry["operation"] = operation
        trace_id = getattr(record, "trace_id", "")
        if trace_id:
            entry["logging.googleapis.com/trace"] = (
                f"projects/{self.trace_project}/traces/{trace_id}"
                if self.trace_project
                else trace_id
            )
            if getattr(record, "span_id", ""):
                entry["logging.googleapis.com/spanId"] = record.__dict__["span_id"]
            entry["logging.googleapis.com/trace_sampled"] = bool(
                getattr(record, "trace_sampled", False)
            )
        if record.exc_info:
            entry["stack_trace"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)


class TextFormatter(logging.Formatter):
    """Human-readable lines for terminals, with the operation at the end."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record``."""
        text = redact(super().format(record))
        operation = getattr(record, "operation", "")
        return f"{text} [{operation}]" if operation and operation not in text else text


def configure_logging(
    level: str, fmt: str, *, trace_project: str = "", stream: TextIO | None = None
) -> logging.Handler:
    """Install one handler on the root logger (stderr by default) and return it."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    handler.setFormatter(JsonFormatter(trace_project) if use_json else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _PAYLOAD_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logging.INFO, logger.getEffectiveLevel()))
    return handler
