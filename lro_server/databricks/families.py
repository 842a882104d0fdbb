"""Every Databricks family the tracker follows, by the records' ``family``."""

from __future__ import annotations

from lro_server.databricks.clusters import ClustersFamily
from lro_server.databricks.commands import CommandsFamily
from lro_server.databricks.family import Family
from lro_server.databricks.jobs import JobsFamily
from lro_server.databricks.libraries import LibrariesFamily
from lro_server.databricks.pipelines import PipelinesFamily
from lro_server.databricks.warehouses import WarehousesFamily


def all_families() -> dict[str, Family]:
    """A fresh instance of each family, keyed by its name."""
    families: list[Family] = [
        JobsFamily(),
        ClustersFamily(),
        CommandsFamily(),
        LibrariesFamily(),
        PipelinesFamily(),
        WarehousesFamily(),
    ]
    return {family.name: family for family in families}
