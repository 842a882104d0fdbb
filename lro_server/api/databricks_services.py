"""Every lro.databricks.v1 service this server offers, for the application to register."""

from __future__ import annotations

from collections.abc import Callable

from lro_server.api.clusters import ClustersApi
from lro_server.api.commands import CommandsApi
from lro_server.api.hints import HintsApi
from lro_server.api.jobs import JobsApi
from lro_server.api.libraries import LibrariesApi
from lro_server.api.pipelines import PipelinesApi
from lro_server.api.registry import Method
from lro_server.api.statements import StatementsApi
from lro_server.api.warehouses import WarehousesApi
from lro_server.core.operations import OperationsService


def databricks_methods(service: OperationsService, poke: Callable[[str], None]) -> list[Method]:
    """Methods of Jobs, Clusters, CommandExecution, Libraries, Pipelines, Warehouses,
    Statements, Hints.

    Args:
        service: The Operations service the start methods create operations in.
        poke: Asks the tracker to refresh an operation now (the Hints service).
    """
    return [
        *JobsApi(service).methods(),
        *ClustersApi(service).methods(),
        *CommandsApi(service).methods(),
        *LibrariesApi(service).methods(),
        *PipelinesApi(service).methods(),
        *WarehousesApi(service).methods(),
        *StatementsApi(service).methods(),
        *HintsApi(service.store, poke).methods(),
    ]
