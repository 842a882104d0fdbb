"""A durable operation's payload: the user method to run, its input and labels."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from lro_server.core.errors import Internal
from lro_server.core.record import OperationRecord

#: The records' ``family`` of durable operations (routes them to the Resumer).
FAMILY = "durable"


@dataclasses.dataclass(frozen=True, slots=True)
class Payload:
    """A durable operation's payload: the method to run, its input and labels."""

    method: str
    input: dict[str, Any]
    labels: dict[str, str] = dataclasses.field(default_factory=dict)

    def encode(self) -> str:
        """The stored form (the record's ``payload``)."""
        document = {"method": self.method, "input": self.input, "labels": self.labels}
        return json.dumps(document, separators=(",", ":"))

    @staticmethod
    def of(record: OperationRecord) -> Payload:
        """The payload of ``record``."""
        try:
            found = json.loads(record.payload)
            return Payload(
                str(found["method"]), dict(found["input"]), dict(found.get("labels") or {})
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise Internal(f"{record.name}: unreadable durable payload: {exc}") from exc
