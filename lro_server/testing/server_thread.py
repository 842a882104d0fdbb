"""Run a whole lro-server (both fronts, tracker, store) on its own event loop in a thread.

For tests and demos that drive the server with synchronous clients (google-api-core,
requests) from the main thread::

    with ServerThread(AppConfig(store="sqlite:///tmp/x.db")) as server:
        channel = grpc.insecure_channel(server.grpc_target)
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

from lro_server.cli.app import AppConfig, Application


class ServerThread:
    """An Application started in a daemon thread; ``stop`` (or leaving ``with``) ends it."""

    def __init__(self, config: AppConfig, **app_kwargs: Any) -> None:
        self.config = config
        self._app_kwargs = app_kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="lro-server"
        )
        self.app: Application | None = None

    @property
    def application(self) -> Application:
        """The running application."""
        if self.app is None:
            raise RuntimeError("server not started")
        return self.app

    @property
    def grpc_target(self) -> str:
        """host:port of the gRPC front."""
        return self.application.grpc_target

    @property
    def http_url(self) -> str:
        """Base URL of the HTTP front."""
        return self.application.http_url

    def run(self, coroutine: Any, timeout: float = 30.0) -> Any:
        """Run ``coroutine`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def start(self) -> ServerThread:
        """Start the loop and the application; returns once both fronts listen."""
        self._thread.start()
        self.app = Application(self.config, **self._app_kwargs)
        self.run(self.app.start())
        return self

    def stop(self, grace: float = 1.0) -> None:
        """Stop the application and the loop."""
        if self.app is not None:
            self.run(self.app.stop(grace))
            self.app = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
