"""Metrics kept as plain numbers on the hot paths, turned into metric families at scrape.

Every RPC of both fronts, every store call and every Databricks call is counted. With
prometheus-client, an observation takes a lock per value it changes (three for a histogram:
its bucket, count and sum) and ``labels()`` validates its arguments on each call; here a
caller resolves its label set once (``slot``) and an observation is a few additions on the
event loop's thread, the only one that writes them. A scrape reads the same numbers and
exposes exactly what a prometheus ``Counter`` or ``Histogram`` would.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


class LatencySlot:
    """Sum and buckets of the latencies of one label set (the count is the buckets' sum:
    one addition fewer per observation)."""

    __slots__ = ("_bounds", "buckets", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.total = 0.0
        self.buckets = [0] * (len(bounds) + 1)  # the last one: +Inf

    @property
    def count(self) -> int:
        """Observations so far."""
        return sum(self.buckets)

    def add(self, seconds: float) -> None:
        """One observation of ``seconds``."""
        self.total += seconds
        self.buckets[bisect_left(self._bounds, seconds)] += 1


class CountSlot:
    """The count of one label set."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


class HistogramTally(Collector):
    """A latency histogram kept as plain numbers, turned into its metric family at scrape.

    For the hot paths (every RPC, every store call): prometheus-client takes a lock per
    value it changes, three per observation; here a caller resolves its label set once
    (:meth:`slot`) and an observation is a few additions on the event loop's thread. A
    scrape exposes what a prometheus ``Histogram`` would (``_bucket``, ``_count``,
    ``_sum``).
    """

    def __init__(
        self, name: str, documentation: str, labels: tuple[str, ...], buckets: tuple[float, ...]
    ) -> None:
        self._name, self._documentation, self._labels = name, documentation, list(labels)
        self._bounds = buckets
        self._slots: dict[tuple[str, ...], LatencySlot] = {}

    def slot(self, *values: str) -> LatencySlot:
        """The slot of one label set (created at first use)."""
        found = self._slots.get(values)
        if found is None:
            found = self._slots[values] = LatencySlot(self._bounds)
        return found

    def collect(self) -> Iterator[Metric]:
        """The histogram family."""
        family = HistogramMetricFamily(self._name, self._documentation, labels=self._labels)
        bounds = [*map(floatToGoString, self._bounds), "+Inf"]
        for values, slot in sorted(self._slots.items()):
            cumulative = itertools.accumulate(slot.buckets)
            family.add_metric(
                list(values), list(zip(bounds, cumulative, strict=True)), sum_value=slot.total
            )
        yield family


class CounterTally(Collector):
    """A counter kept as plain numbers (see :class:`HistogramTally`)."""

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...]) -> None:
        self._name, self._documentation, self._labels = name, documentation, list(labels)
        self._slots: dict[tuple[str, ...], CountSlot] = {}

    def slot(self, *values: str) -> CountSlot:
        """The slot of one label set (created at first use)."""
        found = self._slots.get(values)
        if found is None:
            found = self._slots[values] = CountSlot()
        return found

    def collect(self) -> Iterator[Metric]:
        """The counter family (``_total``)."""
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labels)
        for values, slot in sorted(self._slots.items()):
            family.add_metric(list(values), slot.n)
        yield family
