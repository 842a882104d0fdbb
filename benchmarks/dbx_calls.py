"""Databricks calls per second per core: one process making REST calls as fast as it can.

``python benchmarks/dbx_calls.py URL SECONDS CONCURRENCY`` runs ``Databricks.call`` (the
server's own client: rate limiter, retries, error translation, metrics) against the
simulator at ``URL`` with CONCURRENCY calls in flight, and prints one JSON line: calls made
and the CPU seconds this process used (user + system, all its threads). Calls per CPU
second is the figure: what one core spends per call, whatever else the machine does.

The client is imported from whatever ``lro_server`` is first on the path, so the benchmarks
run it for this revision and for an earlier one (``PYTHONPATH``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time


async def _run(url: str, seconds: float, concurrency: int) -> dict[str, float]:
    from lro_server.databricks.client import Databricks, DatabricksOptions

    client = Databricks(DatabricksOptions(host=url, token="bench", requests_per_second=1_000_000.0))
    job = await client.call("POST", "/api/2.2/jobs/create", body={"name": "calls"})
    run = await client.call("POST", "/api/2.2/jobs/run-now", body={"job_id": job["job_id"]})
    query = {"run_id": run["run_id"]}
    calls = 0

    async def caller(end: float) -> None:
        nonlocal calls
        while time.monotonic() < end:
            await client.call("GET", "/api/2.2/jobs/runs/get", query=query)
            calls += 1

    await asyncio.gather(*(caller(time.monotonic() + 0.5) for _ in range(concurrency)))
    calls = 0
    cpu = os.times()
    began = time.monotonic()
    await asyncio.gather(*(caller(began + seconds) for _ in range(concurrency)))
    elapsed = time.monotonic() - began
    after = os.times()
    await client.close()
    used = (after.user - cpu.user) + (after.system - cpu.system)
    return {"calls": calls, "seconds": elapsed, "cpu_seconds": used}


def main() -> None:
    """Entry point: URL SECONDS CONCURRENCY."""
    url, seconds, concurrency = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    try:
        import uvloop
    except ImportError:  # the same fallback as lro-server serve
        result = asyncio.run(_run(url, seconds, concurrency))
    else:
        result = uvloop.run(_run(url, seconds, concurrency))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
