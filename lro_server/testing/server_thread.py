"""Run a whole lro-server (both fronts, tracker, store) on its own event loop in a thread.

For tests and demos that drive the server with synchronous clients (google-api-core,
requests) from the main thread::

    with ServerThread(AppConfig(store="sqlite:///tmp/x.db")) as server:
        channel = grpc.insecure_channel(server.grpc_target)
"""

from __future__ import annotations

from typing import Any, Self

from lro_server.cli.app import AppConfig, Application
from lro_server.testing.loop_thread import LoopThread


class ServerThread(LoopThread):
    """An Application started in a daemon thread; ``stop`` (or leaving ``with``) ends it."""

    def __init__(self, config: AppConfig, **app_kwargs: Any) -> None:
        super().__init__("lro-server")
        self.config = config
        self._app_kwargs = app_kwargs
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

    def start(self) -> Self:
        """Start the loop and the application; returns once both fronts listen."""
        super().start()
        self.app = Application(self.config, **self._app_kwargs)
        self.run(self.app.start())
        return self

    def stop(self, grace: float = 1.0) -> None:
        """Stop the application and the loop."""
        if self.app is not None:
            self.run(self.app.stop(grace))
            self.app = None
        super().stop()
