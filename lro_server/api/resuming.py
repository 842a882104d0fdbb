"""A waiter's resume call, the same for every resumable method: the operation named by the
``x-alis-operation-id`` header goes on from its checkpoint (the request body means
nothing)."""

from __future__ import annotations

from google.longrunning import operations_pb2

from lro_server.api.context import CallContext
from lro_server.resume.engine import Resumer
from lro_server.resume.method import WaitOutcome


async def resume_call(resumer: Resumer, ctx: CallContext, method: str) -> operations_pb2.Operation:
    """Resume the operation ``ctx`` names, started by ``method``, as its waiter asks
    (the wait it ends and how it ended come from the headers)."""
    return await resumer.resume(
        ctx.resume_id,
        ctx.principal,
        method=method,
        wait_id=ctx.wait_id,
        outcome=WaitOutcome.parse(ctx.wait_outcome),
    )
