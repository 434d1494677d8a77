"""A batch histogram exposes what prometheus_client's own ``Histogram`` would, fed the same
values one at a time: the same ``le`` buckets (bounds written the same way), count and sum."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from engine.stream.buckets import BatchHistogram
from engine.stream.metrics import AGE_BUCKETS, LATENCY_BUCKETS, Metrics

values = st.lists(
    st.one_of(
        st.floats(min_value=0, max_value=1e7, allow_nan=False),
        st.sampled_from([*LATENCY_BUCKETS, *AGE_BUCKETS]),  # on a bound: inside it (le)
    ),
    max_size=60,
)


def _samples(registry: CollectorRegistry, name: str) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels.get("le", "")): s.value
        for metric in registry.collect()
        for s in metric.samples
        if s.name.startswith(name) and not s.name.endswith("_created")
    }


@given(batches=st.lists(values, max_size=4), bounds=st.sampled_from([LATENCY_BUCKETS, AGE_BUCKETS]))
def test_a_batch_histogram_exposes_what_prometheus_clients_histogram_does(
    batches: list[list[float]], bounds: tuple[float, ...]
) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    batch = BatchHistogram("h_seconds", "help", bounds)
    ours.register(batch)
    single = Histogram("h_seconds", "help", buckets=bounds, registry=theirs)
    for values_ in batches:
        batch.observe_many(values_)
        for value in values_:
            single.observe(value)
    mine, reference = _samples(ours, "h_seconds"), _samples(theirs, "h_seconds")
    assert mine.keys() == reference.keys()
    for key, value in reference.items():
        assert mine[key] == pytest.approx(value), key


@given(
    batches=st.lists(
        st.lists(st.floats(min_value=-1e4, max_value=1e4, allow_nan=False), max_size=40),
        max_size=4,
    ),
    at_least=st.sampled_from([0.0, 0.005, 2.0]),
)
def test_a_value_below_the_floor_is_counted_as_the_floor(
    batches: list[list[float]], at_least: float
) -> None:
    """A clock a little ahead makes a latency negative: it is counted as ``at_least``, as
    prometheus_client would count ``max(at_least, value)``."""
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    batch = BatchHistogram("h_seconds", "help", LATENCY_BUCKETS)
    ours.register(batch)
    single = Histogram("h_seconds", "help", buckets=LATENCY_BUCKETS, registry=theirs)
    for values_ in batches:
        batch.observe_many(values_, at_least)
        for value in values_:
            single.observe(max(at_least, value))
    mine, reference = _samples(ours, "h_seconds"), _samples(theirs, "h_seconds")
    assert mine.keys() == reference.keys()
    for key, value in reference.items():
        assert mine[key] == pytest.approx(value, abs=1e-6), key


def test_the_workers_latency_histograms_are_batch_histograms_in_its_registry() -> None:
    metrics = Metrics()
    metrics.ingest_latency.observe_many([0.02, 0.3, 0.3])
    metrics.cdr_age.observe_many(iter([5.0]))  # any iterable, read once
    found = _samples(metrics.registry, "rating_")
    assert found[("rating_ingest_latency_seconds_count", "")] == 3
    assert found[("rating_ingest_latency_seconds_bucket", "0.25")] == 1
    assert found[("rating_ingest_latency_seconds_bucket", "0.5")] == 3
    assert found[("rating_ingest_latency_seconds_sum", "")] == pytest.approx(0.62)
    assert found[("rating_cdr_age_seconds_bucket", "1.0")] == 0
    assert found[("rating_cdr_age_seconds_bucket", "10.0")] == 1
