"""Histograms kept as plain counts per bucket, for values observed many at a time.

prometheus_client's ``Histogram.observe`` takes a lock and walks the bucket bounds for each
value: about a microsecond, which the rate agent paid twice per CDR on the event loop. Here
a batch's values are sorted (in C) and each bucket's share is found with ``bisect``, a few
steps per bound rather than per value, with no lock; a scrape, on the health
server's thread, reads the list as it is (each count only grows, so a scrape may lag a batch
but never goes back). The exposition is Prometheus' histogram, as before: ``_bucket{le}``,
``_count`` and ``_sum``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


def cumulative(bounds: Sequence[float], counts: Sequence[int]) -> list[tuple[str, float]]:
    """Per-bucket counts (the last beyond every bound) as Prometheus' cumulative ``le``
    buckets, each bound written as prometheus_client writes it."""
    total = 0
    buckets: list[tuple[str, float]] = []
    for bound, count in zip((*bounds, float("inf")), counts, strict=True):
        total += count
        buckets.append((floatToGoString(bound), total))
    return buckets


class BatchHistogram(Collector):
    """One unlabelled histogram, observed a batch of values at a time."""

    def __init__(self, name: str, documentation: str, bounds: Sequence[float]) -> None:
        self.name, self.documentation = name, documentation
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        """Per bucket, not cumulative; the last is beyond every bound. A value equal to a
        bound is in that bound's bucket (``le``)."""
        self.sum = 0.0

    def observe_many(self, values: Iterable[float], at_least: float | None = None) -> None:
        """Count ``values``; with ``at_least``, a value below it is counted as it (a clock
        a little ahead makes a latency negative)."""
        ordered = sorted(values)
        counts = self.counts
        start = 0
        if at_least is not None:
            start = bisect_left(ordered, at_least)
            counts[bisect_left(self.bounds, at_least)] += start
            self.sum += at_least * start
        below = start
        for i, bound in enumerate(self.bounds):
            upto = bisect_right(ordered, bound, below)
            counts[i] += upto - below
            below = upto
        counts[-1] += len(ordered) - below
        self.sum += sum(ordered[start:])

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], cumulative(self.bounds, self.counts), sum_value=self.sum)
        yield family
