"""Resumable methods: checkpoints, the Resumer, RunChain, and the waiters that resume them."""

from lro_server.resume.chain import ChainMethod
from lro_server.resume.checkpoint import Checkpoint, Wait
from lro_server.resume.embedded import EmbeddedWaiter
from lro_server.resume.engine import Resumer
from lro_server.resume.method import Advance, Failure, ResumableMethod, Resumption, WaitOutcome
from lro_server.resume.waiter import Waiter, WaitTicket
from lro_server.resume.workflows import WorkflowsOptions, WorkflowsWaiter

__all__ = [
    "Advance",
    "ChainMethod",
    "Checkpoint",
    "EmbeddedWaiter",
    "Failure",
    "ResumableMethod",
    "Resumer",
    "Resumption",
    "Wait",
    "WaitOutcome",
    "WaitTicket",
    "Waiter",
    "WorkflowsOptions",
    "WorkflowsWaiter",
]
