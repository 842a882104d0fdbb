"""Which operation a child belongs to, for expiry (the server's sweep and ``lro-server purge``)."""

from __future__ import annotations

from lro_server.core.record import OperationRecord
from lro_server.resume.chain import parent_of
from lro_server.resume.durable_activation import durable_parent


def parent_operation(record: OperationRecord) -> str | None:
    """The chain or durable method a child operation belongs to (its request id names it),
    if any: expiry keeps a done child while its parent may still read it."""
    found = parent_of(record.request_id)
    return found[0] if found else durable_parent(record.request_id)
