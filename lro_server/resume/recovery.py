"""After a restart: find operations that wait (their checkpoints say so) and resume watching.

Waits are never only in memory. On start the server lists the unfinished operations of
every resumable method (by metadata type), hands each pending wait back to the waiter
(the embedded waiter re-registers it and re-reads its children at once; the Cloud Workflows
waiter launches an execution only if none was recorded), and makes the first move again
for operations created just before a crash that never made it (idempotent: children are
found again by request id). While the server runs, :func:`begin_stalled` does the same
periodically for operations whose create answer was lost, as the tracker does for
unstarted Databricks work.

Both functions take only what they use: the store, the methods, the waiter, and a way to
begin an operation again (the resumer's first move, run in the background).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable

from lro_server.core import filter as aip160
from lro_server.core.errors import FailedPrecondition, LroError
from lro_server.core.pagetoken import Cursor
from lro_server.core.record import OperationRecord
from lro_server.core.store import ListQuery, OperationStore
from lro_server.resume.checkpoint import Checkpoint
from lro_server.resume.method import ResumableMethod
from lro_server.resume.waiter import Waiter, WaitTicket

_log = logging.getLogger(__name__)

#: Operations read per page.
RECOVERY_PAGE = 500

#: Makes the first move of an operation again, in the background.
Begin = Callable[[OperationRecord], None]


async def recover_waits(
    store: OperationStore, methods: Iterable[ResumableMethod], waiter: Waiter, begin: Begin
) -> int:
    """Restore every pending wait of ``methods``' operations; returns how many were found."""
    served = {method.method: method for method in methods}
    found = 0
    async for record in unfinished(store, methods):
        if record.checkpoint is None or record.method not in served:
            continue
        try:
            checkpoint = Checkpoint.of(record)
        except FailedPrecondition as exc:
            _log.error("%s: %s", record.name, exc)
            continue
        if checkpoint.wait is not None:
            found += 1
            try:
                ticket = WaitTicket.of(record, checkpoint, served[record.method].resume_method)
                await waiter.restore(ticket)
            except LroError as exc:
                _log.warning("%s: restoring its wait failed: %s", record.name, exc)
        elif checkpoint.seq == 0:
            _log.info("%s: created but never started; starting it again", record.name)
            begin(record)
        elif getattr(served[record.method], "restartable", False):
            # It was running when the process died: nobody runs it now.
            _log.info("%s: was running; starting it again", record.name)
            begin(record)
    _log.info("recovered %d pending waits", found)
    return found


async def begin_stalled(
    store: OperationStore,
    methods: Iterable[ResumableMethod],
    begin: Begin,
    *,
    created_before_us: int,
) -> int:
    """Make the first move of operations created before ``created_before_us`` that never
    made it (the answer of their create was lost, so no start followed, and a retried call
    only found them), and move again those of restartable methods (durable ones) that
    were running but have not been written since then (their replica died). Returns how
    many were begun again."""
    begun = 0
    restartable = {m.method for m in methods if getattr(m, "restartable", False)}
    async for record in unfinished(store, methods):
        if record.create_time_us >= created_before_us or record.checkpoint is None:
            continue
        try:
            checkpoint = Checkpoint.of(record)
        except FailedPrecondition:
            continue
        stalled = (
            record.method in restartable
            and checkpoint.wait is None
            and record.update_time_us < created_before_us
        )
        if (checkpoint.seq == 0 and checkpoint.wait is None) or stalled:
            _log.info("%s: created but never started; starting it again", record.name)
            begin(record)
            begun += 1
    return begun


async def unfinished(
    store: OperationStore, methods: Iterable[ResumableMethod]
) -> AsyncIterator[OperationRecord]:
    """Every unfinished operation of ``methods``, page by page."""
    for method in methods:
        expr = aip160.parse(f'done = false AND metadata.@type = "{method.metadata_type}"')
        after: Cursor | None = None
        while True:
            page = await store.list(
                ListQuery(filter=expr, owner=None, after=after, limit=RECOVERY_PAGE)
            )
            for record in page:
                yield record
            if len(page) < RECOVERY_PAGE:
                break
            after = Cursor(page[-1].create_time_us, page[-1].name)
