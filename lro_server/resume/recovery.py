"""After a restart: find operations that wait (their checkpoints say so) and resume watching.

Waits are never only in memory. On start the server lists the unfinished operations of
every resumable method (by metadata type), hands each pending wait back to the waiter
(the embedded waiter re-registers it and re-reads its children at once; the Cloud Workflows
waiter launches an execution only if none was recorded), and makes the first move again
for operations created just before a crash that never made it (idempotent: children are
found again by request id). While the server runs, :func:`begin_stalled` does the same
periodically for operations whose create answer was lost, as the tracker does for
unstarted Databricks work.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from lro_server.core import filter as aip160
from lro_server.core.errors import FailedPrecondition, LroError
from lro_server.core.pagetoken import Cursor
from lro_server.core.record import OperationRecord
from lro_server.core.store import ListQuery
from lro_server.resume.checkpoint import Checkpoint

if TYPE_CHECKING:
    from lro_server.resume.engine import Resumer

_log = logging.getLogger(__name__)

#: Operations read per page.
RECOVERY_PAGE = 500


async def recover_waits(resumer: Resumer) -> int:
    """Restore every pending wait of ``resumer``'s methods; returns how many were found."""
    found = 0
    async for record in _unfinished(resumer):
        found += await _recover_one(resumer, record)
    _log.info("recovered %d pending waits", found)
    return found


async def begin_stalled(resumer: Resumer, *, created_before_us: int) -> int:
    """Make the first move of operations created before ``created_before_us`` that never
    made it (the answer of their create was lost, so no start followed, and a retried call
    only found them). Returns how many were begun again."""
    begun = 0
    async for record in _unfinished(resumer):
        if record.create_time_us >= created_before_us or record.checkpoint is None:
            continue
        try:
            checkpoint = Checkpoint.of(record)
        except FailedPrecondition:
            continue
        if checkpoint.seq == 0 and checkpoint.wait is None:
            resumer.spawn(_begin_again(resumer, record))
            begun += 1
    return begun


async def _unfinished(resumer: Resumer) -> AsyncIterator[OperationRecord]:
    """Every unfinished operation of ``resumer``'s methods, page by page."""
    for method in resumer.methods.values():
        expr = aip160.parse(f'done = false AND metadata.@type = "{method.metadata_type}"')
        after: Cursor | None = None
        while True:
            page = await resumer.store.list(
                ListQuery(filter=expr, owner=None, after=after, limit=RECOVERY_PAGE)
            )
            for record in page:
                yield record
            if len(page) < RECOVERY_PAGE:
                break
            after = Cursor(page[-1].create_time_us, page[-1].name)


async def _recover_one(resumer: Resumer, record: OperationRecord) -> int:
    if record.checkpoint is None or record.method not in resumer.methods:
        return 0
    try:
        checkpoint = Checkpoint.of(record)
    except FailedPrecondition as exc:
        _log.error("%s: %s", record.name, exc)
        return 0
    if checkpoint.wait is not None:
        try:
            await resumer.waiter.restore(resumer.ticket(record, checkpoint))
        except LroError as exc:
            _log.warning("%s: restoring its wait failed: %s", record.name, exc)
        return 1
    if checkpoint.seq == 0:
        resumer.spawn(_begin_again(resumer, record))
    return 0


async def _begin_again(resumer: Resumer, record: OperationRecord) -> None:
    _log.info("%s: created but never started; starting it again", record.name)
    await resumer.start(record)
