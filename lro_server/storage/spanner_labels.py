"""The Spanner store's listing driven by the label index (a filter with ``labels.k = v``).

Batches of the index's entries, newest first, each batch's operations read by key and
tested against the rest of the filter, until the page is full: a page read, not a scan.
"""

from __future__ import annotations

from typing import Any

from google.cloud import spanner

from lro_server.core.filter_ast import Compare, without
from lro_server.core.filter_eval import filter_row, matches
from lro_server.core.pagetoken import Cursor
from lro_server.core.record import OperationRecord
from lro_server.core.store import ListQuery
from lro_server.storage.spanner_calls import SpannerCalls
from lro_server.storage.spanner_schema import TABLE
from lro_server.storage.spanner_sql import COLUMNS, labeled_candidates, record_from_row

#: Entries of the label index read per round of a label-driven listing (at least a page).
LABEL_BATCH = 100

# google-cloud-spanner is only partly annotated; these names are used as untyped.
_KeySet: Any = spanner.KeySet


def labeled(calls: SpannerCalls, query: ListQuery, label: Compare) -> list[OperationRecord]:
    """Up to ``query.limit`` records matching ``query``, whose filter requires ``label``
    (run on a worker thread, in one multi-use snapshot)."""
    rest = without(query.filter, label)
    found: list[OperationRecord] = []
    after = query.after
    batch = max(query.limit, LABEL_BATCH)
    with calls.db.snapshot(multi_use=True) as snapshot:
        while len(found) < query.limit:
            sql, params = labeled_candidates(label, after, batch)
            candidates = calls.rows(snapshot, sql, params)
            if not candidates:
                break
            keys = [[str(row[0])] for row in candidates]
            rows = snapshot.read(TABLE, COLUMNS, _KeySet(keys=keys), timeout=calls.timeout)
            records = {r.name: r for r in map(record_from_row, rows)}
            for (key,) in keys:
                record = records.get(key)
                if record is None or (query.owner is not None and record.owner != query.owner):
                    continue
                if matches(rest, filter_row(record)):
                    found.append(record)
            key, create_us = candidates[-1]
            after = Cursor(int(create_us), str(key))
            if len(candidates) < batch:
                break
    return found[: query.limit]
