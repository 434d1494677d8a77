"""The worker's garbage collector: its pauses measured, and less for it to walk.

CPython's cyclic collector stops the whole process while it runs, and a full collection
walks every tracked object of the heap. A worker's heap is mostly long-lived: the catalog
and its index, the SIM routes, Faust's and aiokafka's services, the recovered partition
states. So:

- `GcPauses` times every collection (``gc.callbacks``) and is exported as the histogram
  ``rating_gc_pause_seconds{generation}`` with the longest pause per generation beside it.
- `Garbage.settle` moves what is alive once the worker owns and has recovered its
  partitions into the permanent generation (``gc.freeze``), which collections never walk
  again; it runs again after a rebalance changed what the worker owns. Frozen objects are
  still freed by reference counting; only a cycle among them would outlive its use. It
  also gives what glibc holds freed back to the system (memory.py), with or without a
  freeze.
- `Garbage.start` sets the collection thresholds (``RATING_GC_THRESHOLD``): a larger first
  threshold means fewer young collections, each of which walks the survivors again.

None of it decides anything; it changes when the process pauses, never what it does.
"""

from __future__ import annotations

import gc
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from .buckets import cumulative
from .memory import release_free_memory

PAUSE_BUCKETS = (
    *(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075),
    *(0.1, 0.15, 0.25, 0.5, 1.0, 2.5),
)
"""Fine around tens of milliseconds, where a full collection of a worker's heap falls."""
GENERATIONS = 3

Threshold = tuple[int, int, int]


def parse_threshold(text: str) -> Threshold | None:
    """``"50000,20,10"`` → the three thresholds of ``gc.set_threshold``; ``""`` → ``None``
    (CPython's own). Each must be a positive integer."""
    if not text.strip():
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != GENERATIONS or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"a GC threshold is three positive integers, like 50000,20,10: {text!r}")
    first, second, third = (int(p) for p in parts)
    return first, second, third


class GcPauses(Collector):
    """Every collection's duration, by generation, kept in plain lists.

    The callback runs inside the collector, on whichever thread allocated: it takes no lock
    (a lock held by the interrupted thread would deadlock it) and allocates nothing the
    collector tracks. A scrape reads the lists as they are."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._started = 0.0
        self.counts = [[0] * (len(PAUSE_BUCKETS) + 1) for _ in range(GENERATIONS)]
        """Per generation, the pauses per bucket (not cumulative; the last is beyond all)."""
        self.sums = [0.0] * GENERATIONS
        self.longest = [0.0] * GENERATIONS

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = self._clock()
            return
        self.observe(info["generation"], self._clock() - self._started)

    def observe(self, generation: int, seconds: float) -> None:
        self.counts[generation][bisect_left(PAUSE_BUCKETS, seconds)] += 1
        self.sums[generation] += seconds
        if seconds > self.longest[generation]:
            self.longest[generation] = seconds

    def collect(self) -> Iterator[Metric]:
        pauses = HistogramMetricFamily(
            "rating_gc_pause_seconds",
            "Pauses of the worker's process for a garbage collection, by generation (2: full).",
            labels=["generation"],
        )
        longest = GaugeMetricFamily(
            "rating_gc_pause_max_seconds",
            "The longest garbage collection pause since the worker started, by generation.",
            labels=["generation"],
        )
        for generation in range(GENERATIONS):
            label = [str(generation)]
            buckets = cumulative(PAUSE_BUCKETS, self.counts[generation])
            pauses.add_metric(label, buckets, sum_value=self.sums[generation])
            longest.add_metric(label, self.longest[generation])
        yield pauses
        yield longest
        yield GaugeMetricFamily(
            "rating_gc_frozen_objects",
            "Objects moved to the permanent generation (gc.freeze), never walked again.",
            value=gc.get_freeze_count(),
        )


class Garbage:
    """The process's collector settings and its freezes; inert until `start` (only the
    worker process starts it: tests building a topology in their own process do not)."""

    def __init__(self, pauses: GcPauses, freeze: bool, threshold: Threshold | None) -> None:
        self.pauses = pauses
        self.freeze = freeze
        self.threshold = threshold
        self.started = False
        self.settled_for: frozenset[int] | None = None
        """The wallet partitions owned when the heap was last frozen."""

    def start(self) -> None:
        if self.threshold is not None:
            gc.set_threshold(*self.threshold)
        if self.pauses not in gc.callbacks:
            gc.callbacks.append(self.pauses)
        self.started = True

    def stop(self) -> None:
        if self.pauses in gc.callbacks:
            gc.callbacks.remove(self.pauses)
        self.started = False

    def settle(self, owned: frozenset[int]) -> bool:
        """Once the worker owns ``owned`` and has recovered them all: collect what is
        garbage now, then freeze the rest, and give the C heap's free memory back
        (`release_free_memory`), once per set of partitions. Whether it froze."""
        if not (self.started and owned) or owned == self.settled_for:
            return False
        self.settled_for = owned
        if self.freeze:
            gc.collect()
            gc.freeze()
        # What recovery allocated and freed on its threads, back to the system.
        release_free_memory()
        return self.freeze
