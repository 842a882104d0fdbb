"""Durable methods: your own resumable operations in plain async Python.

::

    from lro_server import durable

    @durable.method("acme.Nightly")
    async def nightly(ctx: durable.Context, request: dict) -> dict:
        run = await ctx.call("lro.databricks.v1.Jobs/RunNow", {"job_id": request["job"]})
        await ctx.sleep(timedelta(minutes=5))
        return {"run": run["run_page_url"]}

The server loads the modules named by ``lro-server serve --methods`` (``LRO_METHODS``) and
the entry-point group ``lro_server.methods``, runs each method as an AIP-151 operation,
records every primitive in the operation's journal, and replays the function from its
start whenever what it waits for is ready. See docs/durable.md.
"""

from lro_server.durable.context import (
    Context,
    Durable,
    Handle,
    Promise,
    Step,
    Timer,
    step_key,
)
from lro_server.durable.errors import OperationFailed, StepFailed
from lro_server.durable.method import ENTRY_POINT_GROUP, DurableMethod, method, methods_in
from lro_server.durable.retry import Retry

__all__ = [
    "ENTRY_POINT_GROUP",
    "Context",
    "Durable",
    "DurableMethod",
    "Handle",
    "OperationFailed",
    "Promise",
    "Retry",
    "Step",
    "StepFailed",
    "Timer",
    "method",
    "methods_in",
    "step_key",
]
