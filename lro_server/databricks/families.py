"""Every Databricks family the tracker follows, by the records' ``family``."""

from __future__ import annotations

from lro_server.core.clock import Clock
from lro_server.databricks.clusters import ClustersFamily
from lro_server.databricks.commands import CommandsFamily
from lro_server.databricks.family import Family
from lro_server.databricks.jobs import JobsFamily
from lro_server.databricks.libraries import LibrariesFamily
from lro_server.databricks.pipelines import PipelinesFamily
from lro_server.databricks.statements import StatementsFamily
from lro_server.databricks.warehouses import WarehousesFamily


def all_families(clock: Clock | None = None, webhook_destination: str = "") -> dict[str, Family]:
    """A fresh instance of each family, keyed by its name.

    Args:
        clock: Wall time of the families that keep time (repair delays, elapsed time).
        webhook_destination: Databricks notification destination attached to the runs
            submitted and the jobs created here ("" for none).
    """
    families: list[Family] = [
        JobsFamily(clock, webhook_destination),
        ClustersFamily(),
        CommandsFamily(),
        LibrariesFamily(),
        PipelinesFamily(),
        WarehousesFamily(),
        StatementsFamily(clock),
    ]
    return {family.name: family for family in families}
