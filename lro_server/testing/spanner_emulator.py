"""Run the Cloud Spanner emulator for tests and benchmarks: one process, fresh databases.

Usage::

    with SpannerEmulator() as emulator, emulator.activated():
        url = emulator.create_database()          # schema applied, fresh name
        store = await open_spanner_store(url)  # lro_server.storage.spanner_open
        ...
        emulator.drop_database(url)

The emulator binary comes from the Debian package ``google-cloud-cli-spanner-emulator``
(found with ``dpkg -L``) or from ``$LRO_SPANNER_EMULATOR_BIN``; :func:`find_emulator_binary`
raises :class:`EmulatorNotFoundError` when neither has it.

Traps of this emulator build that the runner handles:

- multiplexed sessions must be off in the client (else concurrent transactions fail with
  "Transaction not found"), and the client's builtin metrics must be off outside Google
  Cloud (else every exit waits ~30 s): :data:`CLIENT_ENVIRONMENT`, applied by
  :meth:`SpannerEmulator.activated`;
- an instance holds at most 100 databases: drop what you create
  (:meth:`SpannerEmulator.drop_database`); :meth:`SpannerEmulator.create_database` refuses
  to go past :data:`MAX_DATABASES` live ones;
- ``Database.close()`` can block for minutes against the emulator: never call it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

#: Debian package that ships the emulator.
PACKAGE = "google-cloud-cli-spanner-emulator"
#: Environment variable naming the emulator binary explicitly (wins over the package).
BINARY_ENV = "LRO_SPANNER_EMULATOR_BIN"
#: Client-side settings every process talking to this emulator needs.
CLIENT_ENVIRONMENT: dict[str, str] = {
    "GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS": "false",
    "GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS_FOR_RW": "false",
    "GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS_PARTITIONED_OPS": "false",
    "SPANNER_DISABLE_BUILTIN_METRICS": "true",
}
#: Databases one instance may hold on the emulator.
MAX_DATABASES = 100

_BINARY_NAME = "emulator_main"
_EMULATOR_CONFIG = "emulator-config"


class EmulatorNotFoundError(RuntimeError):
    """The emulator binary is not installed (or ``$LRO_SPANNER_EMULATOR_BIN`` is wrong)."""


def find_emulator_binary() -> str:
    """Path of the emulator binary: ``$LRO_SPANNER_EMULATOR_BIN``, else the Debian package's.

    Raises:
        EmulatorNotFoundError: Neither names an executable file; the message says what to install.
    """
    explicit = os.environ.get(BINARY_ENV)
    if explicit:
        if os.access(explicit, os.X_OK) and Path(explicit).is_file():
            return explicit
        raise EmulatorNotFoundError(
            f"${BINARY_ENV} is {explicit!r}, which is not an executable file"
        )
    dpkg = shutil.which("dpkg")
    if dpkg is not None:
        listed = subprocess.run(
            [dpkg, "-L", PACKAGE], capture_output=True, text=True, check=False, timeout=30
        )
        for line in listed.stdout.splitlines():
            path = line.strip()
            if path.endswith("/" + _BINARY_NAME) and os.access(path, os.X_OK):
                return path
    raise EmulatorNotFoundError(
        f"the Cloud Spanner emulator is not installed: install the Debian package {PACKAGE} "
        f"(apt-get install {PACKAGE}) or set ${BINARY_ENV} to its {_BINARY_NAME} binary"
    )


class SpannerEmulator:
    """One emulator process on a free loopback port, with one instance in it.

    Args:
        binary: Path of ``emulator_main``; :func:`find_emulator_binary` by default.
        project: Project id used in every URL.
        instance: Instance created at start.
    """

    def __init__(
        self, binary: str | None = None, *, project: str = "lro-test", instance: str = "lro-test"
    ) -> None:
        self.binary = binary or find_emulator_binary()
        self.project = project
        self.instance = instance
        self.host = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self._client: Any = None
        self._databases: set[str] = set()

    # --- process -------------------------------------------------------------------------

    def start(self, timeout: float = 20.0, *, port: int | None = None) -> None:
        """Start the emulator, wait until it accepts connections, create the instance.

        Args:
            timeout: Seconds to wait for it to listen.
            port: Listen on this port (e.g. the one of an emulator stopped before, to bring
                a store "back"; it starts empty); a free one by default.

        Raises:
            RuntimeError: It exited or did not listen within ``timeout`` seconds.
        """
        if self._process is not None:
            raise RuntimeError("the emulator is already running")
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        # Another process may grab a free port before the emulator: three tries; a port
        # asked for is tried once.
        for candidate in [port] if port is not None else [None, None, None]:
            port = candidate or _free_port()
            self._process = subprocess.Popen(
                [self.binary, "--host_port", f"127.0.0.1:{port}"],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            if _wait_listening(self._process, port, timeout):
                self.host = f"127.0.0.1:{port}"
                break
            self._process.kill()
            self._process.wait()
            self._process = None
        else:
            self._log.seek(0)
            tail = self._log.read()[-2000:].decode(errors="replace")
            self._log.close()
            raise RuntimeError(f"the Spanner emulator did not start:\n{tail}")
        self._create_instance(timeout)

    @property
    def port(self) -> int:
        """The port it listens on, or listened on last (0 before its first start)."""
        return int(self.host.rsplit(":", 1)[1]) if self.host else 0

    @property
    def pid(self) -> int | None:
        """Process id of the running emulator (None when it does not run)."""
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        """Stop the emulator (its databases vanish with it). Idempotent."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        self._client = None
        self._databases.clear()

    def __enter__(self) -> SpannerEmulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- client side -----------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """Environment a process needs to use this emulator through the client library."""
        self._require_running()
        return {"SPANNER_EMULATOR_HOST": self.host, **CLIENT_ENVIRONMENT}

    @contextlib.contextmanager
    def activated(self) -> Iterator[None]:
        """Set :meth:`environment` in ``os.environ`` for the block, then restore it."""
        saved = {name: os.environ.get(name) for name in self.environment()}
        os.environ.update(self.environment())
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def database_url(self, database: str | None = None) -> str:
        """A store URL in this emulator's instance (a fresh database name by default)."""
        database = database or "db-" + uuid.uuid4().hex[:24]
        return f"spanner://projects/{self.project}/instances/{self.instance}/databases/{database}"

    def create_database(
        self, *, schema: bool = True, retention_days: int = 30, url: str | None = None
    ) -> str:
        """Create a database with a fresh name (with the store's schema unless told not to).

        ``url`` names the database instead (e.g. to create again, in a restarted emulator,
        the database a store was opened on).

        Returns:
            Its store URL, ``spanner://projects/P/instances/I/databases/D``.

        Raises:
            RuntimeError: :data:`MAX_DATABASES` created here are still alive.
        """
        from lro_server.storage.spanner_schema import ddl_statements, proto_descriptors

        if len(self._databases) >= MAX_DATABASES:
            raise RuntimeError(
                f"{MAX_DATABASES} emulator databases are alive: drop_database() what you create"
            )
        url = url or self.database_url()
        database_id = url.rsplit("/", 1)[-1]
        statements = ddl_statements(retention_days) if schema else []
        database = (
            self._admin()
            .instance(self.instance)
            .database(
                database_id,
                ddl_statements=statements,
                proto_descriptors=proto_descriptors() if schema else None,
            )
        )
        database.create().result(60)
        self._databases.add(database_id)
        return url

    def adopt_database(self, url: str) -> None:
        """Count a database created elsewhere (e.g. by ``migrate``) so it is dropped later."""
        self._databases.add(url.rsplit("/", 1)[-1])

    def drop_database(self, url: str) -> None:
        """Drop a database of this instance; a missing one is ignored."""
        from google.api_core import exceptions as gexc

        database_id = url.rsplit("/", 1)[-1]
        self._databases.discard(database_id)
        if self._process is None:
            return
        with contextlib.suppress(gexc.NotFound):
            self._admin().instance(self.instance).database(database_id).drop()

    def drop_all(self) -> None:
        """Drop every database created or adopted here."""
        for database_id in sorted(self._databases):
            self.drop_database(database_id)

    # --- plumbing ----------------------------------------------------------------------------

    def _require_running(self) -> None:
        if self._process is None or not self.host:
            raise RuntimeError("the emulator is not running")

    def _admin(self) -> Any:
        """An admin client bound to this emulator without touching ``os.environ``."""
        self._require_running()
        if self._client is None:
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import spanner

            # Anonymous credentials plus an endpoint make the library treat the endpoint
            # as an emulator (plain text), but SPANNER_EMULATOR_HOST wins over the endpoint
            # when set (e.g. to another emulator of the same process): point it here while
            # the client reads it.
            anonymous: Any = AnonymousCredentials
            saved = os.environ.get("SPANNER_EMULATOR_HOST")
            os.environ["SPANNER_EMULATOR_HOST"] = self.host
            try:
                self._client = spanner.Client(
                    project=self.project,
                    credentials=anonymous(),
                    client_options={"api_endpoint": self.host},
                    disable_builtin_metrics=True,
                )
            finally:
                if saved is None:
                    del os.environ["SPANNER_EMULATOR_HOST"]
                else:
                    os.environ["SPANNER_EMULATOR_HOST"] = saved
        return self._client

    def _create_instance(self, timeout: float) -> None:
        from google.api_core import exceptions as gexc

        instance = self._admin().instance(
            self.instance,
            configuration_name=f"projects/{self.project}/instanceConfigs/{_EMULATOR_CONFIG}",
            node_count=1,
        )
        # On a port used before, the first calls may still meet the previous connection's
        # reconnect backoff (gRPC shares it between channels to one address): retry.
        deadline = time.monotonic() + timeout
        while True:
            try:
                with contextlib.suppress(gexc.AlreadyExists):
                    instance.create().result(timeout)
                return
            except gexc.ServiceUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(process: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
    """Poll until ``port`` accepts a connection; False if the process died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.01)
    return False
