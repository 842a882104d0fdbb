"""The tracker's typed payload: what it keeps about the Databricks work of one operation.

Stored as the record's ``payload`` (JSON object text) and read back by :meth:`Work.of`;
nothing outside this package reads it. ``request`` is the Databricks REST body as the
start method built it (Databricks' own field names); ``entity`` holds the ids Databricks
answered with once the work was started.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from lro_server.core.errors import Internal
from lro_server.core.record import OperationRecord

JsonDict = dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Entity:
    """The Databricks ids behind an operation; each family fills the fields it uses.

    Attributes:
        run_id: Job run (jobs).
        repair_id: Repair of that run (jobs RepairRun).
        job_id: Job created for the run (jobs CreateAndRun).
        cluster_id: Cluster (clusters, libraries, commands).
        goal: State the action drives the entity to (``RUNNING``, ``TERMINATED``;
            libraries: ``install`` or ``uninstall``).
        context_id: Execution context (commands).
        command_id: Command, once sent (commands).
        created_context: The context was created for this operation (and is destroyed
            at its end).
        pipeline_id: Pipeline (pipelines).
        update_id: Pipeline update ("" for a stop).
        warehouse_id: SQL warehouse (warehouses).
    """

    run_id: int = 0
    repair_id: int = 0
    job_id: int = 0
    cluster_id: str = ""
    goal: str = ""
    context_id: str = ""
    command_id: str = ""
    created_context: bool = False
    pipeline_id: str = ""
    update_id: str = ""
    warehouse_id: str = ""

    def to_json(self) -> JsonDict:
        """The ids that are set, as a JSON object."""
        return {
            field.name: value
            for field in dataclasses.fields(self)
            if (value := getattr(self, field.name)) != field.default
        }

    @staticmethod
    def from_json(document: Mapping[str, Any]) -> Entity:
        """Parse :meth:`to_json` output (unknown keys are ignored)."""
        values: dict[str, Any] = {}
        for field in dataclasses.fields(Entity):
            if field.name in document:
                values[field.name] = _KINDS[field.name](document[field.name])
        return Entity(**values)


#: The Python type of each Entity field, to parse stored values strictly.
_KINDS: dict[str, type] = {f.name: type(f.default) for f in dataclasses.fields(Entity)}


@dataclasses.dataclass(frozen=True, slots=True)
class Work:
    """A Databricks operation as the tracker and its family see it.

    ``action``, ``request``, ``entity`` and ``cancel_sent`` are the payload (stored);
    the other fields are copied from the record for the families' convenience.

    Attributes:
        action: What to do, per family (e.g. ``run_now``, ``create``, ``start_update``).
        request: The Databricks REST body (JSON).
        entity: Ids of the started entity; None until Databricks accepted the start.
        cancel_sent: Databricks was asked to stop the entity.
        create_time_us: When the operation was created.
        deadline_us: When the operation times out (0: never).
        cancel_requested: CancelOperation was called.
    """

    action: str
    request: JsonDict = dataclasses.field(default_factory=dict)
    entity: Entity | None = None
    cancel_sent: bool = False
    create_time_us: int = 0
    deadline_us: int = 0
    cancel_requested: bool = False

    @property
    def started(self) -> bool:
        """Whether Databricks accepted the start (the entity ids are known)."""
        return self.entity is not None

    @property
    def ids(self) -> Entity:
        """The entity; Internal if the work was not started (a tracker bug)."""
        if self.entity is None:
            raise Internal("the Databricks work was not started yet")
        return self.entity

    def payload(self) -> str:
        """The stored form (the record's ``payload``)."""
        document: JsonDict = {"action": self.action, "request": self.request}
        if self.entity is not None:
            document["entity"] = self.entity.to_json()
        if self.cancel_sent:
            document["cancel_sent"] = True
        return json.dumps(document, separators=(",", ":"), allow_nan=False)

    @staticmethod
    def of(record: OperationRecord) -> Work:
        """The work of ``record`` (Internal when its payload is not the tracker's)."""
        try:
            document = json.loads(record.payload)
            entity = document.get("entity")
            return Work(
                action=str(document["action"]),
                request=dict(document.get("request") or {}),
                entity=None if entity is None else Entity.from_json(entity),
                cancel_sent=bool(document.get("cancel_sent")),
                create_time_us=record.create_time_us,
                deadline_us=record.deadline_us,
                cancel_requested=record.cancel_requested,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise Internal(f"{record.name}: unreadable Databricks work: {exc}") from exc

    def stored_in(self, record: OperationRecord) -> OperationRecord:
        """``record`` with this work as its payload."""
        return dataclasses.replace(record, payload=self.payload())


def new_payload(action: str, request: Mapping[str, Any]) -> str:
    """The payload of an operation about to start ``action`` with ``request``."""
    return Work(action=action, request=dict(request)).payload()
