"""serve_forever: the simulator as a foreground process (``lro-server simulate-databricks``)."""

from __future__ import annotations

import asyncio
import signal

from .server import DatabricksSimulator

__all__ = ["serve_forever"]


def serve_forever(host: str, port: int) -> None:
    """Serves a simulator until SIGINT or SIGTERM, after printing its URL.

    Args:
        host: The address to bind, e.g. ``127.0.0.1``.
        port: The port; 0 picks a free one (the printed URL tells which).
    """
    asyncio.run(_serve(host, port))


async def _serve(host: str, port: int) -> None:
    sim = DatabricksSimulator()
    await sim.start(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"Databricks simulator listening on {sim.url}", flush=True)
    try:
        await stop.wait()
    finally:
        await sim.stop()
