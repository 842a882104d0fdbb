"""Live progress of chains: a running step's Databricks state, mirrored into the parent.

A chain's metadata is rebuilt from its checkpoint at each resume, which happens when a
child ends. In between, this ObservedStore listener copies what the tracker writes into a
running child's metadata (run id, run page URL, life-cycle and result states, message) into
the parent's step, so GetOperation on the parent shows the Databricks state of the step in
progress. It is display only: a lost race with a resume is simply dropped (the resume
writes the child's final state anyway), and nothing is decided from it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from lro_server._proto.lro.databricks.v1 import chains_pb2
from lro_server.core import lifecycle
from lro_server.core.cas import compare_and_set
from lro_server.core.clock import Clock, to_micros
from lro_server.core.errors import Aborted, FailedPrecondition, LroError, NotFound
from lro_server.core.record import OperationRecord
from lro_server.core.store import OperationStore
from lro_server.resume.chain import observe_child, parent_of

_log = logging.getLogger(__name__)

#: Compare-and-set attempts per change before the update is dropped (display only).
ATTEMPTS = 3

Spawn = Callable[[Coroutine[Any, Any, Any]], None]


class ChainProgress:
    """Listener that keeps a chain's running step in step with its child operation."""

    def __init__(self, store: OperationStore, spawn: Spawn, *, clock: Clock) -> None:
        self._store = store
        self._spawn = spawn
        self._clock = clock

    def changed(self, name: str, record: OperationRecord | None) -> None:
        """ObservedStore listener; finished children are left to the resume."""
        if record is None or record.done:
            return
        parent = parent_of(record.request_id)
        if parent is not None:
            self._spawn(self._mirror(parent[0], parent[1], record))

    async def _mirror(self, parent_name: str, index: int, child: OperationRecord) -> None:
        def mirrored(parent: OperationRecord) -> OperationRecord | None:
            metadata = chains_pb2.ChainMetadata()
            if parent.done or not parent.operation.metadata.Unpack(metadata):
                return None
            if index >= len(metadata.steps) or metadata.steps[index].operation != child.name:
                return None
            step = metadata.steps[index]
            before = step.SerializeToString()
            observe_child(step, child)
            if step.SerializeToString() == before:
                return None
            metadata.update_time.FromMicroseconds(to_micros(self._clock.now()))
            return lifecycle.with_metadata(parent, metadata)

        try:
            await compare_and_set(self._store, parent_name, mirrored, attempts=ATTEMPTS)
        except (Aborted, FailedPrecondition, NotFound):
            return  # a resume or a cancel is writing the parent: its state wins
        except LroError as exc:
            _log.info("%s: step progress not written: %s", parent_name, exc)
