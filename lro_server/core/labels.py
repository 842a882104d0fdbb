"""Operation labels (validated like Google Cloud labels) and the ids operations are found by.

Labels are the caller's: a map given to every start method, stored with the operation,
shown in its metadata and matched by ``labels.<key>`` filters. :class:`SearchKeys` are the
server's: the Databricks ids behind an operation (job, run, cluster, warehouse, pipeline),
kept in indexed columns so ``metadata.run_id = 42`` lists a page without a scan.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from lro_server.core.errors import InvalidArgument

#: Most labels of one operation (Google Cloud's limit).
MAX_LABELS = 64
#: Longest key or value.
MAX_LABEL_LENGTH = 63
_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_VALUE = re.compile(r"[a-z0-9_-]{0,63}")


def validate_labels(labels: Mapping[str, str], field: str = "labels") -> dict[str, str]:
    """The labels as a plain dict; InvalidArgument naming the first bad key or value.

    Google Cloud's rules, in ASCII: at most 64 labels; a key starts with a lowercase
    letter; keys and values hold at most 63 lowercase letters, digits, ``_`` or ``-``
    (values may be empty).
    """
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(
            f"{field}: at most {MAX_LABELS} labels, got {len(labels)}", metadata={"field": field}
        )
    for key, value in labels.items():
        if not _KEY.fullmatch(key):
            raise InvalidArgument(
                f"{field}: key {key[:80]!r} must start with a lowercase letter and hold at most "
                f"{MAX_LABEL_LENGTH} lowercase letters, digits, '_' or '-'",
                metadata={"field": f"{field}.{key[:80]}"},
            )
        if not _VALUE.fullmatch(value):
            raise InvalidArgument(
                f"{field}: value of {key!r} must hold at most {MAX_LABEL_LENGTH} lowercase "
                "letters, digits, '_' or '-'",
                metadata={"field": f"{field}.{key}"},
            )
    return dict(labels)


def is_label_key(key: str) -> bool:
    """Whether ``key`` is a valid label key (for ``labels.<key>`` filters)."""
    return _KEY.fullmatch(key) is not None


@dataclasses.dataclass(frozen=True, slots=True)
class SearchKeys:
    """The Databricks ids an operation is found by; 0 or "" when it has none.

    Attributes:
        job_id: The job (run-now, create-and-run, a tracked run's job).
        run_id: The job run.
        cluster_id: The cluster (clusters, libraries, commands).
        warehouse_id: The SQL warehouse (warehouses, statements).
        pipeline_id: The pipeline.
    """

    job_id: int = 0
    run_id: int = 0
    cluster_id: str = ""
    warehouse_id: str = ""
    pipeline_id: str = ""

    def to_json(self) -> dict[str, int | str]:
        """The ids that are set."""
        # Every id's unset value (0, "") is falsy, and a set one is not.
        return {name: value for name in KEY_COLUMNS if (value := getattr(self, name))}

    @staticmethod
    def from_json(document: Mapping[str, object]) -> SearchKeys:
        """Parse :meth:`to_json` output (unknown keys are ignored)."""
        return SearchKeys(
            job_id=int(str(document.get("job_id") or 0)),
            run_id=int(str(document.get("run_id") or 0)),
            cluster_id=str(document.get("cluster_id") or ""),
            warehouse_id=str(document.get("warehouse_id") or ""),
            pipeline_id=str(document.get("pipeline_id") or ""),
        )

    def column(self, name: str) -> int | str | None:
        """The stored column value of id ``name``: None when unset (SQL NULL)."""
        value: int | str = getattr(self, name)
        return value or None


#: The search key columns, in the order the stores declare them.
KEY_COLUMNS = tuple(f.name for f in dataclasses.fields(SearchKeys))
#: An operation without Databricks ids.
NO_KEYS = SearchKeys()
