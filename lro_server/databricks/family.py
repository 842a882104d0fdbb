"""The port every Databricks family (jobs, clusters, ...) implements for the tracker."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from google.protobuf.message import Message

from lro_server.core.errors import Code
from lro_server.databricks.client import Databricks
from lro_server.databricks.work import Entity, RepairAttempt, Work


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    """Where an entity stands, judged from one observation (pure data, table-driven).

    Attributes:
        done: Whether the work is over.
        code: Code.OK for success; the failure's code otherwise (meaningless if not done).
        message: Why it failed (or a note), in Databricks' own words where possible.
    """

    done: bool
    code: Code = Code.OK
    message: str = ""

    @property
    def succeeded(self) -> bool:
        """Done and successful."""
        return self.done and self.code == Code.OK


#: The verdict of anything still running.
PENDING = Verdict(done=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Observation:
    """One look at a Databricks entity.

    Attributes:
        state: Live state for listing filters (e.g. ``RUNNING``).
        metadata: New operation metadata.
        verdict: Pending, success or failure.
        response: The operation's response when it succeeded.
        details: Extra google.rpc.Status details when it failed (e.g. ErrorInfo).
        entity: The entity with new ids (e.g. a command sent once its execution context
            became ready); the tracker stores it with the metadata.
        repairs: The work's automatic repairs as they stand now (jobs), when they changed;
            the tracker stores them with the metadata.
    """

    state: str
    metadata: Message
    verdict: Verdict
    response: Message | None = None
    details: tuple[Message, ...] = ()
    entity: Entity | None = None
    repairs: tuple[RepairAttempt, ...] | None = None


class Family(Protocol):
    """Starts, observes and cancels one kind of Databricks entity."""

    #: The records' ``family`` this family handles.
    name: str

    def initial_metadata(self, work: Work) -> Message:
        """Metadata of a freshly created operation."""
        ...

    async def start(
        self, dbx: Databricks, work: Work, token: str, *, retry: bool = False
    ) -> Entity:
        """Start the work; return the entity's ids (stored as ``work.entity``).

        ``token`` is stable per operation: pass it as Databricks' idempotency token where
        the API has one, so a retried start never creates a second entity. ``retry`` is
        True when an earlier start may have reached Databricks (it failed ambiguously, or
        the replica died before storing the ids): where there is no idempotency token, look
        the entity up (e.g. by a tag carrying ``token``) before creating it again.
        """
        ...

    async def observe(self, dbx: Databricks, work: Work, metadata: Message | None) -> Observation:
        """Read the entity once and judge it."""
        ...

    async def cancel(self, dbx: Databricks, work: Work) -> None:
        """Ask Databricks to stop the entity (asynchronous on Databricks' side)."""
        ...


#: One tracked operation handed to :meth:`BatchFamily.observe_many`: its work and metadata.
Tracked = tuple[Work, Message]


@runtime_checkable
class BatchFamily(Family, Protocol):
    """A family that can observe many entities with a few list calls (optional)."""

    async def observe_many(
        self, dbx: Databricks, tracked: Sequence[Tracked]
    ) -> list[Observation | None]:
        """Observe ``tracked`` entities through list endpoints.

        Returns one item per entry, in order: its Observation, or None when the lists did
        not show it (e.g. a run that left ``active_only``); the tracker then reads that one
        with :meth:`Family.observe`.
        """
        ...
