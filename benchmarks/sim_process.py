"""The Databricks simulator on a manual clock in its own process (for the write path).

``python -m benchmarks.sim_process PORT [real]`` serves until its standard input closes.
Timelines only move when ``POST /_sim/clock/advance`` says so, so a benchmark can finish
thousands of runs at the same instant; with ``real`` they follow real time instead.
"""

from __future__ import annotations

import asyncio
import sys

from lro_server.testing.databricks_sim import DatabricksSimulator, ManualClock


async def serve(port: int, real_clock: bool = False) -> None:
    """Serve until stdin reaches end of file."""
    if real_clock:
        simulator = DatabricksSimulator(require_token=False)
    else:
        simulator = DatabricksSimulator(clock=ManualClock(), require_token=False)
    await simulator.start("127.0.0.1", port)
    print(simulator.url, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await simulator.stop()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), real_clock=sys.argv[2:] == ["real"]))
