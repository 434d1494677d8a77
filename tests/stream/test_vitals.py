"""What a worker reports: counts of a batch, lag per input partition, readiness."""

from __future__ import annotations

import asyncio
import collections
import gc
from types import SimpleNamespace
from typing import Any

import pytest
from domain.builders import MB, T0, catalog, cdr, plan, rate, wallet
from faust.types import TP

from engine import flow
from engine.catalog import load_catalog
from engine.domain import initial_state
from engine.domain.events import CdrRejected
from engine.stream.metrics import Metrics
from engine.stream.positions import Record
from engine.stream.processor import PartitionState, RatingProcessor
from engine.stream.rater import BatchTally, Rater
from engine.stream.routed import RoutedGroup
from engine.stream.topics import REPO_TOPICS, load_topics
from engine.stream.vitals import Vitals

from .harness import CATALOG, partition_zero_rater


class Consumer:
    def __init__(self, highwater: dict[TP, int]) -> None:
        self._highwater = highwater

    def highwater(self, tp: TP) -> int | None:
        return self._highwater.get(tp)


def _vitals(**app: Any) -> Vitals:
    fields = {"rebalancing": False, "in_recovery": False, "consumer": Consumer({}), **app}
    return Vitals(SimpleNamespace(**fields), RatingProcessor(load_catalog(CATALOG)), list)


def _beat(vitals: Vitals, assigned: set[int]) -> None:
    """One heartbeat, from within a running loop (as the worker's timer runs it)."""

    async def beat() -> None:
        vitals.heartbeat(lambda: assigned)

    asyncio.run(beat())


def _sample(vitals: Vitals, name: str, **labels: str) -> float | None:
    return vitals.metrics.registry.get_sample_value(name, labels)


def test_a_batchs_counts_reach_their_metrics() -> None:
    vitals = _vitals()
    counts = collections.Counter(
        {"skipped": 2, "decisions": 3, "rejected:unknown_sim": 1, "UsageRated": 4, "TopUp": 1}
    )
    vitals.count(counts)
    assert _sample(vitals, "rating_redeliveries_skipped_total") == 2
    assert _sample(vitals, "rating_decisions_total") == 3
    assert _sample(vitals, "rating_cdrs_rejected_total", reason="unknown_sim") == 1
    assert _sample(vitals, "rating_events_total", type="UsageRated") == 4
    assert _sample(vitals, "rating_cdrs_rated_total") == 4
    assert _sample(vitals, "rating_events_total", type="TopUp") == 1


def test_a_batchs_tally_counts_each_event_type_and_each_rejection_reason() -> None:
    """The rate agent gathers a batch's events and counts them once it is done
    (``Rater.counts``): the same counts as counting each event as it was decided."""
    cat = catalog(plans=[plan(rates={"data": {"EU": rate("1", MB)}})], wallets=[wallet("w1")])
    tally, state, expected = BatchTally(), initial_state("w1"), collections.Counter[str]()
    inputs = [cdr("c1", MB), cdr("c2", -1), cdr("c3", MB, at=T0 + 1), cdr("c1", MB), cdr("c4", MB)]
    for item in inputs:
        made, state = flow.decide(state, "w1", item, cat)
        tally.counts["decisions"] += 1
        tally.events.extend(made.events)
        expected["decisions"] += 1
        for e in made.events:
            expected[type(e).__name__] += 1
            if isinstance(e, CdrRejected):
                expected["rejected:" + e.reason] += 1
    tally.counts["skipped"] += 2
    expected["skipped"] += 2
    counts = Rater.counts(tally)
    assert counts == expected
    assert counts["rejected:negative_volume"] == 1 and counts["rejected:duplicate"] == 1
    assert counts["UsageRated"] == 3


def test_a_batchs_latencies_count_each_cdr_once_it_is_durable() -> None:
    """Each routed CDR is one value of each latency histogram, measured at the moment the
    batch is durable: its age from its own start, its ingest latency from its arrival on
    ``cdr.raw``; whether or not it was rated (here refused: no such wallet)."""
    names = load_topics(REPO_TOPICS, environ={})
    processor = RatingProcessor(load_catalog(CATALOG))
    processor.recover(0, [])
    metrics = Metrics()
    rejected: list[Any] = []
    rater = partition_zero_rater(names, processor, metrics, rejected)
    start = 1_767_571_200  # 2026-01-05T00:00:00Z
    line = (
        b'{"cdr_id":"c%d","iccid":"8900000000000000001","service":"data",'
        b'"started_at":"2026-01-05T00:00:%02dZ","volume":1024,"mcc":"262","mnc":"01"}'
    )
    group = RoutedGroup(partition=0)
    group.add("nobody", 10, (start + 60) * 1000, line % (1, 0))
    group.add("nobody", 11, (start + 61) * 1000, line % (2, 30))
    record = Record(names.cdr_by_wallet.name, 0, 0, b"nobody", group.encode(), 0.0, None)
    tally = BatchTally()
    out = SimpleNamespace(produce=lambda *record: pytest.fail("nothing is decided"))
    rater.answer(out, record, tally)  # type: ignore[arg-type]
    rater.observe(tally, start + 100.0)

    def sample(name: str) -> float | None:
        return metrics.registry.get_sample_value(name)

    assert len(rejected) == 2
    assert sample("rating_cdr_age_seconds_count") == 2
    assert sample("rating_cdr_age_seconds_sum") == 100 + 70
    assert sample("rating_ingest_latency_seconds_count") == 2
    assert sample("rating_ingest_latency_seconds_sum") == 40 + 39


def test_lag_is_the_distance_to_the_partitions_end_until_it_is_revoked() -> None:
    vitals = _vitals(consumer=Consumer({TP("in", 0): 10, TP("in", 1): 3}))
    vitals.observe_lag({("in", 0): 7, ("in", 1): 5, ("in", 2): 0})
    assert _sample(vitals, "rating_consumer_lag", topic="in", partition="0") == 3
    assert _sample(vitals, "rating_consumer_lag", topic="in", partition="1") == 0
    assert _sample(vitals, "rating_consumer_lag", topic="in", partition="2") is None
    vitals.forget_lag([TP("in", 0)])
    assert _sample(vitals, "rating_consumer_lag", topic="in", partition="0") is None


def test_ready_once_every_assigned_partition_is_recovered() -> None:
    vitals = _vitals()
    _beat(vitals, {0, 1})
    ready, body = vitals.health.readiness()
    assert not ready and "recovering wallet partitions 0, 1" in str(body)
    vitals.processor.install(0, PartitionState())
    vitals.processor.install(1, PartitionState())
    _beat(vitals, {0, 1})
    assert vitals.health.readiness()[0]
    assert vitals.health.liveness()[0]


def test_not_ready_while_rebalancing() -> None:
    vitals = _vitals(rebalancing=True)
    _beat(vitals, {0})
    ready, body = vitals.health.readiness()
    assert not ready and "rebalancing" in str(body)


def test_the_heap_is_frozen_once_the_owned_partitions_are_recovered() -> None:
    """A started worker's heap (garbage.py) is frozen at the heartbeat that finds it ready,
    not while it recovers, and again when a rebalance changed what it owns."""
    vitals = Vitals(
        SimpleNamespace(rebalancing=False, in_recovery=False, consumer=Consumer({})),
        RatingProcessor(load_catalog(CATALOG)),
        list,
        gc_freeze=True,
        gc_threshold="",
    )
    garbage = vitals.garbage
    garbage.start()
    try:
        _beat(vitals, {0})
        assert garbage.settled_for is None  # still recovering
        vitals.processor.install(0, PartitionState())
        _beat(vitals, {0})
        assert garbage.settled_for == {0}
        assert gc.get_freeze_count() > 0
        vitals.processor.install(1, PartitionState())
        _beat(vitals, {0, 1})
        assert garbage.settled_for == {0, 1}
    finally:
        garbage.stop()
        gc.unfreeze()
