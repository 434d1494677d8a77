"""The worker's garbage collector: every collection timed by generation and exported, the
heap frozen once the owned partitions are recovered (again only when they change), the
thresholds set, and nothing of it done in a process that did not start it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from engine.stream.garbage import PAUSE_BUCKETS, Garbage, GcPauses, parse_threshold


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    """This test process's own collector, as it was: thresholds, callbacks, no freeze."""
    threshold, callbacks = gc.get_threshold(), list(gc.callbacks)
    yield
    gc.set_threshold(*threshold)
    gc.callbacks[:] = callbacks
    gc.unfreeze()


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_a_threshold_is_three_positive_integers_or_cpythons_own() -> None:
    assert parse_threshold("50000, 20,10") == (50000, 20, 10)
    assert parse_threshold("") is None
    for bad in ("700,10", "700,10,0", "a,b,c", "700,-1,10", "1,2,3,4"):
        with pytest.raises(ValueError, match="three positive integers"):
            parse_threshold(bad)


def test_each_pause_lands_in_its_bucket_and_the_longest_is_kept() -> None:
    pauses = GcPauses()
    registry = CollectorRegistry()
    registry.register(pauses)
    pauses.observe(0, 0.0002)
    pauses.observe(0, PAUSE_BUCKETS[0])  # a bucket's bound is inside it (le)
    pauses.observe(2, 0.07)
    pauses.observe(2, 9.0)  # beyond every bucket
    name = "rating_gc_pause_seconds"
    assert _sample(registry, f"{name}_bucket", generation="0", le="0.0005") == 2
    assert _sample(registry, f"{name}_count", generation="0") == 2
    assert _sample(registry, f"{name}_bucket", generation="2", le="0.05") == 0
    assert _sample(registry, f"{name}_bucket", generation="2", le="0.1") == 1
    assert _sample(registry, f"{name}_bucket", generation="2", le="2.5") == 1
    assert _sample(registry, f"{name}_bucket", generation="2", le="+Inf") == 2
    assert _sample(registry, f"{name}_sum", generation="2") == pytest.approx(9.07)
    assert _sample(registry, "rating_gc_pause_max_seconds", generation="2") == 9.0
    assert _sample(registry, f"{name}_count", generation="1") == 0


def test_a_started_worker_times_every_collection_by_its_generation() -> None:
    pauses = GcPauses()
    garbage = Garbage(pauses, freeze=False, threshold=(12345, 7, 3))
    garbage.start()
    assert gc.get_threshold() == (12345, 7, 3)
    gc.collect(1)
    gc.collect(2)
    assert sum(pauses.counts[1]) >= 1 and sum(pauses.counts[2]) >= 1
    assert pauses.longest[2] > 0
    garbage.stop()
    before = sum(pauses.counts[2])
    gc.collect(2)
    assert sum(pauses.counts[2]) == before  # stopped: no longer called


def test_the_heap_is_frozen_once_per_set_of_owned_partitions() -> None:
    garbage = Garbage(GcPauses(), freeze=True, threshold=None)
    assert not garbage.settle(frozenset({0, 1}))  # not started: a test's process, say
    threshold = gc.get_threshold()
    garbage.start()
    assert gc.get_threshold() == threshold  # None: CPython's own thresholds stay
    assert not garbage.settle(frozenset())  # owning nothing: nothing is long-lived yet
    assert garbage.settle(frozenset({0, 1}))
    frozen = gc.get_freeze_count()
    assert frozen > 0
    assert not garbage.settle(frozenset({0, 1}))
    assert garbage.settle(frozenset({0, 1, 2}))  # a rebalance brought one more
    assert gc.get_freeze_count() >= frozen
    registry = CollectorRegistry()
    registry.register(garbage.pauses)
    assert _sample(registry, "rating_gc_frozen_objects") == gc.get_freeze_count()


def test_a_worker_told_not_to_freeze_never_does() -> None:
    garbage = Garbage(GcPauses(), freeze=False, threshold=None)
    garbage.start()
    assert not garbage.settle(frozenset({0}))
    assert gc.get_freeze_count() == 0
