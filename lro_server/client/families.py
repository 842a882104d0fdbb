"""The start methods of each service, shared by the synchronous and the asyncio client.

Each method takes its request message, or the request's fields as keyword arguments (the
Databricks REST body's names, e.g. ``job_id=1, notebook_params={"day": "2026-12-01"}``;
``request_id`` for AIP-155 idempotency, ``timeout`` as a ``timedelta`` or seconds). It
returns what the client makes of a started operation: an :class:`~.operation.Operation`
future (``Client``), or an awaitable of an :class:`~.operation_async.AsyncOperation`
(``AsyncClient``). Errors that prevent the start (a job that does not exist, a bad request)
are google-api-core exceptions carrying Databricks' message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from lro_server.client._requests import build_request, method_descriptor

#: What a start returns: a future, or an awaitable of one.
Started = TypeVar("Started")
#: Starts ``method`` with a built request.
Starter = Callable[[MethodDescriptor, Message], Started]


class _Family(Generic[Started]):
    service: ClassVar[str]

    def __init__(self, start: Starter[Started]) -> None:
        self._start_call = start

    def _start(self, rpc: str, request: Message | None, fields: dict[str, Any]) -> Started:
        method = method_descriptor(self.service, rpc)
        return self._start_call(method, build_request(method, request, fields))


class Jobs(_Family[Started]):
    """``lro.databricks.v1.Jobs``: job runs. The operation's response is a ``Run``."""

    service = "lro.databricks.v1.Jobs"

    def run_now(self, request: Message | None = None, /, **fields: Any) -> Started:
        """Run an existing job (jobs/run-now): ``run_now(job_id=1, job_parameters={...})``."""
        return self._start("RunNow", request, fields)

    def submit(self, request: Message | None = None, /, **fields: Any) -> Started:
        """Submit a one-time run (runs/submit): ``submit(run_name=..., tasks=[...])``."""
        return self._start("Submit", request, fields)

    def repair_run(self, request: Message | None = None, /, **fields: Any) -> Started:
        """Rerun tasks of a finished run (runs/repair): ``repair_run(run_id=..., ...)``."""
        return self._start("RepairRun", request, fields)

    def create_and_run(self, request: Message | None = None, /, **fields: Any) -> Started:
        """Create a job (jobs/create) and run it once."""
        return self._start("CreateAndRun", request, fields)


class Clusters(_Family[Started]):
    """``lro.databricks.v1.Clusters``. The operation's response is a ``Cluster``."""

    service = "lro.databricks.v1.Clusters"

    def create(self, request: Message | None = None, /, **fields: Any) -> Started:
        """Create a cluster and wait until it runs (clusters/create)."""
        return self._start("Create", request, fields)

    def start(self, request: Message | None = None, /, **fields: Any) -> Started:
        """Start a terminated cluster (clusters/start): ``start(cluster_id=...)``."""
        return self._start("Start", request, fields)

    def restart(self, request: Message | None = None, /, **fields: Any) -> Started:
        """Restart a running cluster (clusters/restart)."""
        return self._start("Restart", request, fields)

    def resize(self, request: Message | None = None, /, **fields: Any) -> Started:
        """Resize a running cluster (clusters/resize)."""
        return self._start("Resize", request, fields)

    def edit(self, request: Message | None = None, /, **fields: Any) -> Started:
        """Change a cluster's configuration (clusters/edit)."""
        return self._start("Edit", request, fields)

    def delete(self, request: Message | None = None, /, **fields: Any) -> Started:
        """Terminate a cluster (clusters/delete)."""
        return self._start("Delete", request, fields)


class Commands(_Family[Started]):
    """``lro.databricks.v1.CommandExecution``. The response is a ``CommandResult``."""

    service = "lro.databricks.v1.CommandExecution"

    def execute(self, request: Message | None = None, /, **fields: Any) -> Started:
        """Run a command on a cluster: ``execute(cluster_id=..., language=..., command=...)``."""
        return self._start("Execute", request, fields)


class Libraries(_Family[Started]):
    """``lro.databricks.v1.Libraries``. The response is a ``LibrariesResult``."""

    service = "lro.databricks.v1.Libraries"

    def install(self, request: Message | None = None, /, **fields: Any) -> Started:
        """Install libraries on a cluster: ``install(cluster_id=..., libraries=[...])``."""
        return self._start("Install", request, fields)

    def uninstall(self, request: Message | None = None, /, **fields: Any) -> Started:
        """Uninstall libraries (they go at the next restart)."""
        return self._start("Uninstall", request, fields)


class Pipelines(_Family[Started]):
    """``lro.databricks.v1.Pipelines`` (Lakeflow declarative pipelines)."""

    service = "lro.databricks.v1.Pipelines"

    def start_update(self, request: Message | None = None, /, **fields: Any) -> Started:
        """Start a pipeline update: ``start_update(pipeline_id=..., full_refresh=True)``."""
        return self._start("StartUpdate", request, fields)

    def stop(self, request: Message | None = None, /, **fields: Any) -> Started:
        """Stop a pipeline."""
        return self._start("Stop", request, fields)


class Warehouses(_Family[Started]):
    """``lro.databricks.v1.Warehouses`` (SQL warehouses). The response is a ``Warehouse``."""

    service = "lro.databricks.v1.Warehouses"

    def create(self, request: Message | None = None, /, **fields: Any) -> Started:
        """Create a SQL warehouse and wait until it runs."""
        return self._start("Create", request, fields)

    def start(self, request: Message | None = None, /, **fields: Any) -> Started:
        """Start a SQL warehouse: ``start(id=...)``."""
        return self._start("Start", request, fields)

    def stop(self, request: Message | None = None, /, **fields: Any) -> Started:
        """Stop a SQL warehouse: ``stop(id=...)``."""
        return self._start("Stop", request, fields)

    def edit(self, request: Message | None = None, /, **fields: Any) -> Started:
        """Change a SQL warehouse."""
        return self._start("Edit", request, fields)


class Chains(_Family[Started]):
    """``lro.databricks.v1.Chains``: job runs one after the other, as one operation."""

    service = "lro.databricks.v1.Chains"

    def run(self, request: Message | None = None, /, **fields: Any) -> Started:
        """Run a chain: ``run(steps=[{"name": "train", "run_now": {"job_id": 7}}, ...])``.

        The response is a ``ChainResult``; the metadata a ``ChainMetadata`` with every step.
        """
        return self._start("RunChain", request, fields)


class Services(Generic[Started]):
    """A member per service, each starting its methods with ``start``; both clients are one.

    Attributes:
        jobs, clusters, commands, libraries, pipelines, warehouses, chains: Start methods.
    """

    def __init__(self, start: Starter[Started]) -> None:
        self.jobs: Jobs[Started] = Jobs(start)
        self.clusters: Clusters[Started] = Clusters(start)
        self.commands: Commands[Started] = Commands(start)
        self.libraries: Libraries[Started] = Libraries(start)
        self.pipelines: Pipelines[Started] = Pipelines(start)
        self.warehouses: Warehouses[Started] = Warehouses(start)
        self.chains: Chains[Started] = Chains(start)
