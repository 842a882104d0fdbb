"""SimulatorThread: a simulator on its own event loop in a daemon thread."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from .behaviour import RunBehaviour
from .clock import Clock, monotonic
from .controls import SimulatorControls
from .server import DatabricksSimulator

__all__ = ["SimulatorThread"]


class SimulatorThread(SimulatorControls):
    """Runs a :class:`DatabricksSimulator` in a daemon thread with its own event loop.

    For sync pytest fixtures, and for async tests whose own loop runs the code under test
    (blocking SDK calls from that code then never stall the simulator). Control methods
    are thread-safe::

        with SimulatorThread() as sim:
            client = WorkspaceClient(host=sim.url, token="t", auth_type="pat")
    """

    def __init__(
        self,
        *,
        clock: Clock = monotonic,
        seed: int = 0,
        require_token: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        behaviour: RunBehaviour | None = None,
        demo_job: bool = False,
    ) -> None:
        """Creates a stopped simulator thread; arguments as for DatabricksSimulator."""
        self.simulator = DatabricksSimulator(
            clock=clock,
            seed=seed,
            require_token=require_token,
            behaviour=behaviour,
            demo_job=demo_job,
        )
        self._world = self.simulator._world
        self._host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL of the running simulator."""
        return self.simulator.url

    def start(self, timeout: float = 10.0) -> None:
        """Starts the thread and waits until the simulator listens.

        Raises:
            RuntimeError: Already started, or the simulator failed to start.
        """
        if self._thread is not None:
            raise RuntimeError("already started")
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.simulator.start(self._host, self._port))
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.simulator.stop())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="databricks-sim", daemon=True)
        self._thread.start()
        if not started.wait(timeout):
            raise RuntimeError("the simulator did not start in time")
        if failure:
            self._thread = None
            raise RuntimeError("the simulator failed to start") from failure[0]

    def stop(self, timeout: float = 10.0) -> None:
        """Stops the simulator and joins the thread (idempotent)."""
        thread, loop = self._thread, self._loop
        self._thread = self._loop = None
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)

    def __enter__(self) -> SimulatorThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
