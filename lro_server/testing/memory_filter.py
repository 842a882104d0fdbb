"""The Python filter evaluator MemoryStore lists with; it lives in
:mod:`lro_server.core.filter_eval` (the Spanner store uses it too). Kept importable here."""

from lro_server.core.filter_eval import Value, filter_row, matches

__all__ = ["Value", "filter_row", "matches"]
