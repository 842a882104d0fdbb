"""The Databricks client against the simulator: shared rate limiter, who retries what."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator

import pytest
from family_helpers import CLUSTER_SPEC

from lro_server.core.errors import Unavailable
from lro_server.databricks.client import Databricks, DatabricksOptions
from lro_server.testing.databricks_sim import SimulatorThread
from lro_server.testing.polling import wait_until


@pytest.fixture
async def dbx(sim: SimulatorThread) -> AsyncIterator[Databricks]:
    client = Databricks(
        DatabricksOptions(host=sim.url, token="t", call_timeout_seconds=10, requests_per_second=50)
    )
    yield client
    await client.close()


async def test_a_429_pauses_every_call_to_the_workspace(sim, dbx):
    await dbx.call("GET", "/api/2.2/jobs/list")  # the SDK's first-call setup is done
    sim.inject_fault("rate_limit", path="jobs/runs/list", times=1, retry_after=1)
    throttled = asyncio.create_task(dbx.call("GET", "/api/2.2/jobs/runs/list"))
    await asyncio.to_thread(wait_until, lambda: sim.calls(status=429) > 0, what="the 429")
    started = time.monotonic()
    await dbx.call("GET", "/api/2.2/jobs/list")  # another call, to another endpoint
    waited = time.monotonic() - started
    await throttled
    assert waited >= 0.8, waited  # held by the Retry-After of somebody else's call
    assert dbx.limiter.waits >= 1
    assert sim.calls(path_contains="jobs/runs/list") == 2  # the throttled call was repeated


async def test_a_throttled_create_is_repeated_since_it_was_refused(sim, dbx):
    sim.inject_fault("rate_limit", path="clusters/create", times=1, retry_after=0)
    body = {**CLUSTER_SPEC, "cluster_name": "once"}
    answer = await dbx.call("POST", "/api/2.1/clusters/create", body=body, idempotent=False)
    assert answer["cluster_id"]
    assert len(sim.created("clusters")) == 1


async def test_a_create_whose_answer_was_lost_is_not_repeated(sim, dbx):
    sim.inject_fault("drop_after_commit", path="clusters/create", times=1)
    body = {**CLUSTER_SPEC, "cluster_name": "maybe"}
    with pytest.raises(Unavailable):
        await dbx.call("POST", "/api/2.1/clusters/create", body=body, idempotent=False)
    assert len(sim.created("clusters")) == 1  # applied once; the caller looks it up


async def test_a_read_whose_answer_was_lost_is_repeated(sim, dbx):
    sim.inject_fault("drop_after_commit", path="jobs/list", times=1)
    await dbx.call("GET", "/api/2.2/jobs/list")
    assert sim.calls(path_contains="jobs/list") == 2


async def test_an_outage_longer_than_the_budget_is_unavailable(sim):
    client = Databricks(DatabricksOptions(host=sim.url, token="t", call_timeout_seconds=0.5))
    try:
        sim.inject_fault("unavailable", path="jobs/list", retry_after=0)
        with pytest.raises(Unavailable):
            await client.call("GET", "/api/2.2/jobs/list")
    finally:
        await client.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _proxy_env(monkeypatch: pytest.MonkeyPatch, proxy: str, no_proxy: str) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", no_proxy)


async def test_proxy_settings_are_read_once_for_the_workspace(sim, monkeypatch):
    # The proxy is a closed port: calls work only while NO_PROXY exempts the workspace.
    _proxy_env(monkeypatch, f"http://127.0.0.1:{_closed_port()}", no_proxy="127.0.0.1")
    client = Databricks(DatabricksOptions(host=sim.url, token="t", call_timeout_seconds=2))
    try:
        await client.call("GET", "/api/2.2/jobs/list")
        monkeypatch.setenv("NO_PROXY", "")  # settings are read at start, not per call
        await client.call("GET", "/api/2.2/jobs/list")
    finally:
        await client.close()
    assert sim.calls(path_contains="jobs/list") == 2


async def test_a_proxy_from_the_environment_is_still_used(sim, monkeypatch):
    _proxy_env(monkeypatch, f"http://127.0.0.1:{_closed_port()}", no_proxy="")
    client = Databricks(DatabricksOptions(host=sim.url, token="t", call_timeout_seconds=1))
    try:
        with pytest.raises(Unavailable):
            await client.call("GET", "/api/2.2/jobs/list")
    finally:
        await client.close()
    assert sim.calls(path_contains="jobs/list") == 0  # it went to the (closed) proxy


class Relay:
    """A TCP relay in front of the simulator that counts the connections made through it."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.opened = 0
        self.open = 0
        self.most_open = 0
        self._server: asyncio.Server | None = None
        self._relays: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Relay:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        # Every relayed connection ends here, before the test's loop closes (else their
        # sockets are left to the garbage collector, as ResourceWarnings in a later test).
        for task in self._relays:
            task.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    def reset(self) -> None:
        self.opened, self.most_open = 0, self.open

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        self.opened += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except BaseException:
            self.open -= 1
            writer.close()
            raise

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self.open -= 1
            for end in (writer, up_writer):
                end.close()
                with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                    await end.wait_closed()


async def test_calls_share_kept_alive_connections(sim):
    async with Relay(sim.url) as relay:
        client = Databricks(DatabricksOptions(host=relay.url, token="t", connections=4))
        try:
            assert await client.configuration_problem() is None
            relay.reset()
            for _ in range(30):
                await client.call("GET", "/api/2.2/jobs/list")
        finally:
            await client.close()
    assert relay.opened == 1  # one connection, kept alive, for 30 calls
    assert sim.calls(path_contains="jobs/list") == 30


async def test_calls_in_flight_are_bounded_by_the_connections(sim):
    sim.inject_fault("slow", path="jobs/list", delay=0.3)
    async with Relay(sim.url) as relay:
        client = Databricks(
            DatabricksOptions(host=relay.url, token="t", connections=3, requests_per_second=100)
        )
        try:
            assert await client.configuration_problem() is None
            relay.reset()
            await asyncio.gather(*(client.call("GET", "/api/2.2/jobs/list") for _ in range(9)))
        finally:
            await client.close()
    assert relay.opened == 3  # the other six calls waited for one of the three
    assert sim.calls(path_contains="jobs/list") == 9
