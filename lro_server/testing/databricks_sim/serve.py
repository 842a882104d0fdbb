"""serve_forever: the simulator as a foreground process (``lro-server simulate-databricks``)."""

from __future__ import annotations

import asyncio
import signal

from .behaviour import RunBehaviour
from .server import DatabricksSimulator

__all__ = ["serve_forever"]


def serve_forever(
    host: str,
    port: int,
    *,
    behaviour: RunBehaviour | None = None,
    demo_job: bool = False,
    seed: int = 0,
) -> None:
    """Serves a simulator until SIGINT or SIGTERM, after printing its URL.

    Args:
        host: The address to bind, e.g. ``127.0.0.1``.
        port: The port; 0 picks a free one (the printed URL tells which).
        behaviour: How runs without a configured timeline go.
        demo_job: Start with job 1, ``demo``.
        seed: Seeds which runs fail (``fail_ratio``) and probabilistic faults.
    """
    asyncio.run(_serve(host, port, behaviour, demo_job, seed))


async def _serve(
    host: str, port: int, behaviour: RunBehaviour | None, demo_job: bool, seed: int
) -> None:
    sim = DatabricksSimulator(behaviour=behaviour, demo_job=demo_job, seed=seed)
    await sim.start(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"Databricks simulator listening on {sim.url}", flush=True)
    if demo_job:
        print("demo job: job_id 1 (tasks ingest -> features, quality -> train)", flush=True)
    try:
        await stop.wait()
    finally:
        await sim.stop()
