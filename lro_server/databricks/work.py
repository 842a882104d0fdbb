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
from lro_server.core.labels import SearchKeys
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
        warehouse_id: SQL warehouse (warehouses, statements).
        statement_id: SQL statement (statements).
        tracked: The entity was started elsewhere (a Track method): the operation follows
            it and never started anything.
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
    statement_id: str = ""
    tracked: bool = False

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
class RepairPolicy:
    """When the jobs family repairs a failed run by itself (the request's repair_policy).

    Attributes:
        max_repairs: Most repairs of the run.
        delay_seconds: Pause between the failure and its repair.
        termination_types: ``status.termination_details.type`` values that qualify
            (empty: any failure).
    """

    max_repairs: int
    delay_seconds: float = 0.0
    termination_types: tuple[str, ...] = ()

    def to_json(self) -> JsonDict:
        """The stored form."""
        return {
            "max_repairs": self.max_repairs,
            "delay_seconds": self.delay_seconds,
            "termination_types": list(self.termination_types),
        }

    @staticmethod
    def from_json(document: Mapping[str, Any]) -> RepairPolicy:
        """Parse :meth:`to_json` output."""
        return RepairPolicy(
            max_repairs=int(document["max_repairs"]),
            delay_seconds=float(document.get("delay_seconds") or 0.0),
            termination_types=tuple(str(t) for t in document.get("termination_types") or ()),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class RepairAttempt:
    """One automatic repair, or the intent of one not yet confirmed by Databricks.

    The intent is stored before ``runs/repair`` is called, with the latest repair id the
    run had then (``after_repair_id``): after a crash between the call and its record, the
    next poll finds a newer repair in the run's history and adopts it instead of repairing
    twice (Databricks also refuses a repair whose ``latest_repair_id`` is stale).

    Attributes:
        repair_id: Databricks' id (0 while only intended).
        after_repair_id: The run's latest repair id when the repair was decided (0: none).
        not_before_us: Earliest time of the call (the policy's delay).
        termination_type: Why the run qualified (its termination type).
        failed_result: The run's result state before the repair.
        rerun_tasks: Tasks the repair reran.
        result_state: The repaired run's result ("" while it runs).
        repair_time_us: When the repair was requested.
    """

    repair_id: int = 0
    after_repair_id: int = 0
    not_before_us: int = 0
    termination_type: str = ""
    failed_result: str = ""
    rerun_tasks: tuple[str, ...] = ()
    result_state: str = ""
    repair_time_us: int = 0

    def to_json(self) -> JsonDict:
        """The stored form."""
        document = dataclasses.asdict(self)
        document["rerun_tasks"] = list(self.rerun_tasks)
        return document

    @staticmethod
    def from_json(document: Mapping[str, Any]) -> RepairAttempt:
        """Parse :meth:`to_json` output."""
        return RepairAttempt(
            repair_id=int(document.get("repair_id") or 0),
            after_repair_id=int(document.get("after_repair_id") or 0),
            not_before_us=int(document.get("not_before_us") or 0),
            termination_type=str(document.get("termination_type") or ""),
            failed_result=str(document.get("failed_result") or ""),
            rerun_tasks=tuple(str(t) for t in document.get("rerun_tasks") or ()),
            result_state=str(document.get("result_state") or ""),
            repair_time_us=int(document.get("repair_time_us") or 0),
        )


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
        repair: The automatic repair policy (jobs), if any.
        repairs: Automatic repairs so far; the last one has ``repair_id`` 0 while it is
            only intended.
        create_time_us: When the operation was created.
        deadline_us: When the operation times out (0: never).
        cancel_requested: CancelOperation was called.
        labels: The operation's labels (shown in its metadata).
    """

    action: str
    request: JsonDict = dataclasses.field(default_factory=dict)
    entity: Entity | None = None
    cancel_sent: bool = False
    repair: RepairPolicy | None = None
    repairs: tuple[RepairAttempt, ...] = ()
    create_time_us: int = 0
    deadline_us: int = 0
    cancel_requested: bool = False
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def pending_repair(self) -> RepairAttempt | None:
        """The intended repair not yet confirmed by Databricks, if any."""
        if self.repairs and not self.repairs[-1].repair_id:
            return self.repairs[-1]
        return None

    def search_keys(self) -> SearchKeys:
        """The Databricks ids the operation is found by (entity first, then request)."""
        entity = self.entity or Entity()
        request = self.request

        def text(name: str, found: str) -> str:
            return found or str(request.get(name) or "")

        def number(name: str, found: int) -> int:
            try:
                return found or int(request.get(name) or 0)
            except (TypeError, ValueError):
                return 0

        return SearchKeys(
            job_id=number("job_id", entity.job_id),
            run_id=number("run_id", entity.run_id),
            cluster_id=text("cluster_id", entity.cluster_id) or str(request.get("clusterId") or ""),
            warehouse_id=text("warehouse_id", entity.warehouse_id),
            pipeline_id=text("pipeline_id", entity.pipeline_id),
        )

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
        if self.repair is not None:
            document["repair"] = self.repair.to_json()
        if self.repairs:
            document["repairs"] = [attempt.to_json() for attempt in self.repairs]
        return json.dumps(document, separators=(",", ":"), allow_nan=False)

    @staticmethod
    def of(record: OperationRecord) -> Work:
        """The work of ``record`` (Internal when its payload is not the tracker's)."""
        try:
            document = json.loads(record.payload)
            entity = document.get("entity")
            repair = document.get("repair")
            return Work(
                action=str(document["action"]),
                request=dict(document.get("request") or {}),
                entity=None if entity is None else Entity.from_json(entity),
                cancel_sent=bool(document.get("cancel_sent")),
                repair=None if repair is None else RepairPolicy.from_json(repair),
                repairs=tuple(RepairAttempt.from_json(a) for a in document.get("repairs") or ()),
                create_time_us=record.create_time_us,
                deadline_us=record.deadline_us,
                cancel_requested=record.cancel_requested,
                labels=record.labels,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise Internal(f"{record.name}: unreadable Databricks work: {exc}") from exc

    def stored_in(self, record: OperationRecord, **fields: Any) -> OperationRecord:
        """``record`` with this work as its payload (and the ids it is found by), and with
        ``fields`` of the record changed in the same copy."""
        return dataclasses.replace(
            record, payload=self.payload(), keys=self.search_keys(), **fields
        )


def new_payload(
    action: str, request: Mapping[str, Any], *, repair: RepairPolicy | None = None
) -> str:
    """The payload of an operation about to start ``action`` with ``request``."""
    return Work(action=action, request=dict(request), repair=repair).payload()
