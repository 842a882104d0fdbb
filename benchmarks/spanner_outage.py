"""Readiness through a Spanner outage: how soon /readyz and gRPC health follow the store.

A server runs on a Spanner database of the emulator. The emulator process is stopped (by
its pid) for ``--outage`` seconds, then started again on the same port, where the
database is created again with the store's schema (the emulator keeps nothing across a
restart). Meanwhile this script asks ``/readyz`` and gRPC health every 20 ms, with no
other traffic, and prints:

- how long after the emulator stopped readiness first turned NOT_SERVING (503), if at all
  (it may be after the store was back);
- how long after the database was back it turned SERVING (200) for good.

Usage::

    python benchmarks/spanner_outage.py               # a 5 s outage
    python benchmarks/spanner_outage.py --outage 2    # (--quick: the same)

Writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import git_revision, table, write_result
from lro_server.cli.app import AppConfig
from lro_server.databricks.client import DatabricksOptions
from lro_server.testing.server_thread import ServerThread
from lro_server.testing.spanner_emulator import SpannerEmulator

#: Seconds between two probes.
PROBE = 0.02
#: Ready this long (more than the default health check interval) counts as ready for good.
STABLE = 6.0


class Probes:
    """Readiness over HTTP and gRPC, sampled in a thread: (monotonic time, http, grpc)."""

    def __init__(self, server: ServerThread) -> None:
        self.samples: list[tuple[float, bool, bool]] = []
        self._server = server
        self._channel = grpc.insecure_channel(server.grpc_target)
        self._stub = health_pb2_grpc.HealthStub(self._channel)
        self._running = True
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _http(self) -> bool:
        try:
            with urllib.request.urlopen(self._server.http_url + "/readyz", timeout=10) as answer:
                return bool(answer.status == 200)
        except urllib.error.HTTPError:
            return False

    def _grpc(self) -> bool:
        answer = self._stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    def _run(self) -> None:
        while self._running:
            self.samples.append((time.monotonic(), self._http(), self._grpc()))
            time.sleep(PROBE)

    def first_down(self, after: float) -> dict[str, float | None]:
        """Seconds after ``after`` until each probe first answered not ready (None: never)."""
        found: dict[str, float | None] = {}
        for key, index in (("http", 1), ("grpc", 2)):
            times = [s[0] - after for s in self.samples if s[0] >= after and not s[index]]
            found[key] = times[0] if times else None
        return found

    def ready_again(self, after: float) -> dict[str, float]:
        """Seconds after ``after`` from which each probe answered ready for good (0: it
        never answered not ready after ``after``)."""
        found: dict[str, float] = {}
        for key, index in (("http", 1), ("grpc", 2)):
            times = [s[0] - after for s in self.samples if s[0] >= after and not s[index]]
            found[key] = times[-1] + PROBE if times else 0.0
        return found

    def stop(self) -> None:
        self._running = False
        self._thread.join(30)
        self._channel.close()


def run(outage: float) -> dict[str, Any]:
    """One outage; returns the figures."""
    emulator = SpannerEmulator()
    emulator.start()
    try:
        with emulator.activated():
            url = emulator.create_database()
            config = AppConfig(
                store=url,
                databricks=DatabricksOptions(host="http://127.0.0.1:9", token="unused"),
            )
            with ServerThread(config) as server:
                probes = Probes(server)
                time.sleep(1.0)  # SERVING before the outage
                port = emulator.port
                stopped = time.monotonic()
                emulator.stop()  # terminates the emulator's process (by its pid)
                time.sleep(outage)
                emulator.start(port=port)
                emulator.create_database(url=url)
                back = time.monotonic()
                # Ready for longer than a health check interval, or give up after 30 s.
                deadline = back + 30
                while time.monotonic() < deadline and (
                    time.monotonic() - back < STABLE
                    or not all(
                        h and g for t, h, g in probes.samples if t > time.monotonic() - STABLE
                    )
                ):
                    time.sleep(0.1)
                probes.stop()
                down = probes.first_down(stopped)
                up = probes.ready_again(back)
    finally:
        emulator.stop()
    rows = [
        ["NOT_SERVING after the store stopped", down["http"], down["grpc"]],
        ["SERVING for good after the store was back", up["http"], up["grpc"]],
    ]
    print(f"\nSpanner emulator stopped for {outage:g} s (no other traffic); seconds until:")
    print(
        table(["readiness", "/readyz", "gRPC health"], [[r[0], _s(r[1]), _s(r[2])] for r in rows])
    )
    return {"outage_seconds": outage, "not_serving_after": down, "serving_after": up}


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Entry point; returns the result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outage", type=float, default=5.0, help="seconds the store is down")
    parser.add_argument("--quick", action="store_true", help="a 2 s outage")
    args = parser.parse_args(argv)
    result = {"revision": git_revision(), **run(2.0 if args.quick else args.outage)}
    print(f"results: {write_result('spanner_outage', result)}")
    return result


if __name__ == "__main__":
    main()
