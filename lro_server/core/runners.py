"""A WorkRunner that routes each operation to the runner of its kind of work.

Databricks work goes to the tracker; resumable methods (RunChain) to the resumer. The
kind is the record's ``family``; families without a runner of their own go to the default.
"""

from __future__ import annotations

from collections.abc import Mapping

from lro_server.core.operations import Create, WorkRunner
from lro_server.core.record import OperationRecord


class RunnerRouter:
    """WorkRunner dispatching on ``record.family``."""

    def __init__(self, default: WorkRunner, by_family: Mapping[str, WorkRunner]) -> None:
        self.default = default
        self.by_family = dict(by_family)

    def runner(self, record: OperationRecord) -> WorkRunner:
        """The runner of ``record``."""
        return self.by_family.get(record.family, self.default)

    def prepare(self, record: OperationRecord) -> OperationRecord:
        """See WorkRunner.prepare."""
        return self.runner(record).prepare(record)

    async def start_and_store(
        self, record: OperationRecord, create: Create
    ) -> OperationRecord | None:
        """See WorkRunner.start_and_store."""
        return await self.runner(record).start_and_store(record, create)

    async def start(self, record: OperationRecord) -> OperationRecord:
        """See WorkRunner.start."""
        return await self.runner(record).start(record)

    async def request_cancel(self, record: OperationRecord) -> None:
        """See WorkRunner.request_cancel."""
        await self.runner(record).request_cancel(record)
