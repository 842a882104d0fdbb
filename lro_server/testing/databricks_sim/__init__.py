"""A Databricks REST simulator: real HTTP, state timelines, idempotency, fault injection.

Point the real ``databricks-sdk`` at it::

    with SimulatorThread() as sim:
        w = WorkspaceClient(host=sim.url, token="t", auth_type="pat")
        sim.set_timeline("runs", "hold", job_id=job_id)
        run_id = w.jobs.run_now(job_id=job_id).run_id
        sim.finish_run(run_id, result_state="FAILED", state_message="boom")

Every control method also exists over HTTP under ``/_sim/`` (see ``control_http``).
``lro-server simulate-databricks`` serves one with a demo job and the knobs of
``RunBehaviour`` (``--run-seconds``, ``--fail-ratio``, ``--hold``).
"""

from .behaviour import RunBehaviour
from .clock import Clock, ManualClock
from .controls import SimulatorControls
from .errors import ApiError
from .faults import Fault, FaultKind
from .serve import serve_forever
from .server import DatabricksSimulator
from .thread import SimulatorThread
from .timeline import Phase, Timeline, TimelineSpec
from .world import CallRecord, CreatedEntity

__all__ = [
    "ApiError",
    "CallRecord",
    "Clock",
    "CreatedEntity",
    "DatabricksSimulator",
    "Fault",
    "FaultKind",
    "ManualClock",
    "Phase",
    "RunBehaviour",
    "SimulatorControls",
    "SimulatorThread",
    "Timeline",
    "TimelineSpec",
    "serve_forever",
]
