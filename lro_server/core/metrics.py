"""Prometheus metrics of one server process, in a registry of its own.

Every component that measures something takes a :class:`Metrics` in its constructor (default:
a private, never-scraped instance), so several servers in one process (tests, benchmarks)
never share counters and nothing touches prometheus-client's global registry.

Names (all prefixed ``lro_``):

- ``rpc_requests_total{front,method,code}`` and ``rpc_duration_seconds{front,method}``:
  every call on either front. WaitOperation is held by design; read its latency apart.
- ``operations_created_total{family}``, ``operations_finished_total{family,code}``, and
  ``operations_active{family,state}``: unfinished operations this replica tracks, by state.
- ``tracker_polls_total``, ``tracker_tracked_operations``: the tracker's work.
- ``databricks_calls_total{method,endpoint,status}``, ``databricks_call_duration_seconds``,
  ``databricks_rate_limit_wait_seconds``, ``databricks_rate_limit_waits_total``.
- ``store_duration_seconds{method}``, ``store_errors_total{method,code}``,
  ``store_batched_rows_total`` (records written by batched updates); reads answered from
  the store's memory (``OperationStore.cached``) make no store call and are not in them.
- ``store_read_cache_hits_total``: reads the SQLite store answered from its read cache.
- ``resume_latency_seconds{method}``, ``resumes_total{method,outcome}``.
- ``wait_operation_waiters``: WaitOperation calls held right now.
"""

from __future__ import annotations

import collections
import re
import threading
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from lro_server.core.errors import Code
from lro_server.core.record import OperationRecord
from lro_server.core.tally import CounterTally, HistogramTally

#: Latency buckets for calls that usually take milliseconds but may be held for minutes
#: (WaitOperation up to max_wait_seconds, Databricks calls up to their retry budget).
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    600.0,
)
#: Store calls are local or one network hop: finer at the low end.
STORE_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
#: Resume latency: from children done to the parent method running again.
RESUME_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)

#: Paths whose endpoint label is kept (paths with ids in them are many).
MAX_ENDPOINT_PATHS = 4096
#: Path segments that are ids (numbers, uuids, hex) become ``{id}`` in endpoint labels, so
#: the label set stays bounded however many entities exist.
_ID_SEGMENT = re.compile(r"^(\d+|[0-9a-fA-F-]{16,}|[0-9a-f]{4,}-[0-9a-f-]+)$")


def endpoint_label(path: str) -> str:
    """A Databricks REST path with the query dropped and id segments replaced by ``{id}``."""
    path = path.split("?", 1)[0]
    return "/".join("{id}" if _ID_SEGMENT.match(part) else part for part in path.split("/"))


def family_of(record: OperationRecord) -> str:
    """The label naming the kind of work behind an operation."""
    return record.family or record.method.split("/", 1)[0] or "unknown"


class ActiveOperations:
    """Unfinished operations this replica tracks, by family and live state.

    Fed from store events: a claim (the full set this replica leases), creates and updates
    (state changes, completion) and deletes. Summed over replicas it is the global picture,
    because each unfinished operation is leased by exactly one replica.
    """

    def __init__(self) -> None:
        self._labels: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()  # scrapes run on the HTTP front's loop; be safe anyway

    def changed(self, name: str, record: OperationRecord | None) -> None:
        """Record a write seen by this process (None: deleted)."""
        with self._lock:
            if record is None or record.done:
                self._labels.pop(name, None)
            else:
                self._labels[name] = (family_of(record), record.state or "STARTING")

    def claimed(self, records: Iterable[OperationRecord]) -> None:
        """Replace the set with what this replica now leases."""
        labels = {r.name: (family_of(r), r.state or "STARTING") for r in records if not r.done}
        with self._lock:
            self._labels = labels

    def counts(self) -> dict[tuple[str, str], int]:
        """Number of operations per (family, state)."""
        with self._lock:
            return dict(collections.Counter(self._labels.values()))


class _Sampled(Collector):
    """Values read from live objects at scrape time (cheap attribute reads, no I/O)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "lro_operations_active",
            "Unfinished operations tracked by this replica, by family and live state.",
            labels=["family", "state"],
        )
        for (family, state), count in sorted(self._metrics.active.counts().items()):
            gauge.add_metric([family, state], count)
        yield gauge
        for name, kind, doc, probe in self._metrics.sampled:
            value = probe()
            if value is None:
                continue
            if kind == "counter":
                yield CounterMetricFamily(name, doc, value=value)
            else:
                yield GaugeMetricFamily(name, doc, value=value)


class Metrics:
    """The metrics of one server process.

    Args:
        registry: Where to register; a new private registry by default.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        # The hot paths (every RPC, every store call) count in tallies, not prometheus
        # metrics: see HistogramTally.
        self.rpc_requests = CounterTally(
            "lro_rpc_requests",
            "RPCs handled, by front (grpc, http), full method and canonical code.",
            ("front", "method", "code"),
        )
        self.rpc_duration = HistogramTally(
            "lro_rpc_duration_seconds",
            "RPC latency by front and method (WaitOperation is held on purpose).",
            ("front", "method"),
            LATENCY_BUCKETS,
        )
        self.operations_created = CounterTally(
            "lro_operations_created", "Operations created, by family.", ("family",)
        )
        self.operations_finished = CounterTally(
            "lro_operations_finished",
            "Operations finished by this replica, by family and canonical code (OK: success).",
            ("family", "code"),
        )
        self.databricks_calls = CounterTally(
            "lro_databricks_calls",
            "Databricks REST calls by HTTP method, endpoint and outcome (OK or canonical code).",
            ("method", "endpoint", "status"),
        )
        self.databricks_duration = HistogramTally(
            "lro_databricks_call_duration_seconds",
            "Databricks REST call latency, retries included.",
            ("method", "endpoint"),
            LATENCY_BUCKETS,
        )
        waits = HistogramTally(
            "lro_databricks_rate_limit_wait_seconds",
            "Time a Databricks call waited for the workspace rate limiter.",
            (),
            LATENCY_BUCKETS,
        )
        r.register(waits)
        self.rate_limit_wait = waits.slot()
        self._endpoints: dict[str, str] = {}
        self.store_duration = HistogramTally(
            "lro_store_duration_seconds",
            "Operation store call latency by method.",
            ("method",),
            STORE_BUCKETS,
        )
        self.store_errors = Counter(
            "lro_store_errors",
            "Operation store calls that raised, by method and canonical code.",
            ["method", "code"],
            registry=r,
        )
        self.resume_latency = Histogram(
            "lro_resume_latency_seconds",
            "From a waiting method's children being done to the method running again.",
            ["method"],
            buckets=RESUME_BUCKETS,
            registry=r,
        )
        self.resumes = Counter(
            "lro_resumes",
            "Resume calls of waiting methods, by method and outcome (resumed, duplicate, error).",
            ["method", "outcome"],
            registry=r,
        )
        self.store_batched_rows = CounterTally(
            "lro_store_batched_rows",
            "Records written by batched compare-and-set calls (update_many), all calls.",
            (),
        )
        for tally in (
            self.rpc_requests,
            self.rpc_duration,
            self.operations_created,
            self.operations_finished,
            self.databricks_calls,
            self.databricks_duration,
            self.store_duration,
            self.store_batched_rows,
        ):
            r.register(tally)
        self.active = ActiveOperations()
        self.sampled: list[tuple[str, str, str, Callable[[], float | None]]] = []
        r.register(_Sampled(self))

    def sample(
        self, name: str, documentation: str, probe: Callable[[], float | None], *, counter: bool
    ) -> None:
        """Expose ``probe()`` (read at scrape time) as a counter or gauge called ``name``.

        For values a component already keeps (the tracker's poll count, the rate limiter's
        waits), so the hot path pays nothing.
        """
        self.sampled.append((name, "counter" if counter else "gauge", documentation, probe))

    # -- hooks -------------------------------------------------------------------------

    def observe_databricks(self, method: str, path: str, status: str, seconds: float) -> None:
        """Count one Databricks REST call and its latency."""
        endpoint = self._endpoints.get(path)
        if endpoint is None:
            if len(self._endpoints) > MAX_ENDPOINT_PATHS:  # ids in paths: stay bounded
                self._endpoints.clear()
            endpoint = self._endpoints[path] = endpoint_label(path)
        self.databricks_calls.slot(method, endpoint, status).n += 1
        self.databricks_duration.slot(method, endpoint).add(seconds)

    def observe_resume(self, method: str, seconds: float, outcome: str = "resumed") -> None:
        """Hook for the resume machinery: one resume of ``method`` after ``seconds``.

        ``seconds`` runs from the moment the last child operation was done to the moment the
        parent method runs again (waiter backoff, workflow scheduling and the call itself).
        Duplicate resumes (no-ops) pass ``outcome="duplicate"`` and are not timed.
        """
        self.resumes.labels(method, outcome).inc()
        if outcome == "resumed":
            self.resume_latency.labels(method).observe(seconds)

    def operation_changed(self, name: str, record: OperationRecord | None) -> None:
        """ObservedStore listener: keep the active set and the finished counters."""
        self.active.changed(name, record)
        if record is None:
            return
        if record.version == 1:
            self.operations_created.slot(family_of(record)).n += 1
        if record.done:
            code = record.error_code or 0
            self.operations_finished.slot(family_of(record), _code_name(code)).n += 1


def _code_name(code: int) -> str:
    try:
        return Code(code).name
    except ValueError:
        return str(code)
