"""Retrying transient errors (engine/stream/outage.py), without a broker: the backoff, what
is retried and what is not, and how an outage shows (readiness, metrics, one log line)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from confluent_kafka import KafkaError, KafkaException
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from engine.store import StoreError, StoreUnavailable
from engine.stream.health import Health
from engine.stream.outage import (
    Backoff,
    KafkaWatch,
    Outage,
    QuietDuringOutage,
    RetryMetrics,
    Stopped,
    classify_kafka,
    classify_store,
    retry,
)


@given(
    st.floats(0.01, 5),
    st.floats(0.1, 120),
    st.floats(1.1, 4),
    st.integers(1, 200),
)
def test_backoff_grows_and_is_capped(initial: float, cap: float, factor: float, n: int) -> None:
    backoff = Backoff(initial, cap, factor)
    assert backoff.delay(1) == min(initial, cap)
    assert backoff.delay(n) <= cap
    assert backoff.delay(n + 1) >= backoff.delay(n)


def outage() -> tuple[Outage, Health, RetryMetrics, CollectorRegistry]:
    registry = CollectorRegistry()
    metrics = RetryMetrics(registry)
    health = Health()
    health.ready(None)
    return Outage("store", "the event store", health, metrics), health, metrics, registry


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_transient_errors_are_retried_until_success(caplog: pytest.LogCaptureFixture) -> None:
    o, health, _metrics, registry = outage()
    calls = []
    seen_ready = []

    def flaky() -> str:
        calls.append(1)
        seen_ready.append(health.readiness()[0])
        if len(calls) <= 3:
            raise StoreUnavailable("lost the event store", "connection_lost")
        return "done"

    with caplog.at_level(logging.WARNING, logger="rating-engine"):
        assert (
            retry(o, flaky, classify_store, Backoff(0.001, 0.002), sleep=lambda s: None) == "done"
        )
    assert len(calls) == 4
    # Ready before, not ready while retrying, ready again after.
    assert seen_ready == [True, False, False, False]
    ready, body = health.readiness()
    assert ready, body
    assert value(registry, "rating_retries_total", component="store", reason="connection_lost") == 3
    assert value(registry, "rating_retrying", component="store") == 0
    # One line when it starts, one when it ends: not one per retry.
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "unavailable" in lines[0] and "back after" in lines[1] and "3 retries" in lines[1]


def test_outage_reason_shows_on_readyz_even_if_the_loop_says_ready() -> None:
    o, health, _metrics, registry = outage()
    o.failed("transport", "broker down")
    health.ready(None)  # the loop's own view (partitions assigned) does not hide the outage
    ready, body = health.readiness()
    assert not ready and "the event store unavailable: transport" in str(body["reason"])
    assert value(registry, "rating_retrying", component="store") == 1
    o.ok()
    assert health.readiness()[0]


def test_permanent_errors_are_raised_at_once() -> None:
    o, health, _metrics, registry = outage()
    calls = []

    def bad() -> None:
        calls.append(1)
        raise StoreError("password authentication failed")

    with pytest.raises(StoreError, match="password"):
        retry(o, bad, classify_store, Backoff(0.001), sleep=lambda s: None)
    assert len(calls) == 1
    assert health.readiness()[0]
    assert (
        registry.get_sample_value(
            "rating_retries_total", {"component": "store", "reason": "connection_lost"}
        )
        is None
    )


def test_stop_ends_the_wait() -> None:
    o, _health, _metrics, _registry = outage()

    def down() -> None:
        raise StoreUnavailable("down", "connection_lost")

    with pytest.raises(Stopped):
        retry(o, down, classify_store, Backoff(60), stopping=lambda: True, sleep=lambda s: None)


@pytest.mark.parametrize(
    ("code", "transient"),
    [
        (KafkaError._WAIT_COORD, True),
        (KafkaError._TRANSPORT, True),
        (KafkaError.COORDINATOR_NOT_AVAILABLE, True),
        (KafkaError.NOT_COORDINATOR, True),
        (KafkaError._ALL_BROKERS_DOWN, True),
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, False),
        (KafkaError.SASL_AUTHENTICATION_FAILED, False),
        (KafkaError.UNKNOWN_TOPIC_OR_PART, False),
    ],
)
def test_kafka_errors_classified(code: int, transient: bool) -> None:
    reason = classify_kafka(KafkaException(KafkaError(code)))
    assert (reason is not None) == transient
    if transient:
        assert reason and reason == reason.lower() and not reason.startswith("_")
    assert classify_kafka(KafkaException(KafkaError(code, fatal=True))) is None


@pytest.mark.parametrize(
    "exc", [KafkaException(), KafkaException("text"), ValueError("text")], ids=repr
)
def test_an_exception_without_a_kafka_error_of_its_own_is_not_transient(
    exc: BaseException,
) -> None:
    transport = KafkaException(KafkaError(KafkaError._TRANSPORT))
    assert classify_kafka(transport) == "transport"
    assert classify_kafka(exc) is None
    # Only the exception itself: one raised from a Kafka error is not retried as it.
    chained = SystemError()
    chained.__cause__ = transport
    assert classify_kafka(chained) is None


@pytest.mark.parametrize(
    ("exc", "opens"),
    [(KafkaException("text"), False), (KafkaException(KafkaError(KafkaError._TRANSPORT)), True)],
)
def test_a_probe_opens_an_outage_only_for_a_kafka_error(exc: BaseException, opens: bool) -> None:
    o, _health, _metrics, _registry = outage()

    def probe() -> None:
        raise exc

    KafkaWatch(o, probe)._probe_once()
    assert o.active is opens


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_kafka_watch_opens_on_transient_errors_and_a_probe_answer_closes_it() -> None:
    o, health, _metrics, registry = outage()
    clock = Clock()
    answers: list[bool] = [False, True]

    def probe() -> None:
        if not answers.pop(0):
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))

    watch = KafkaWatch(o, probe, clock=clock, settle=5.0, every=5.0)
    watch.on_error(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))  # not an outage
    assert not o.active
    watch.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    watch.on_error(KafkaError(KafkaError._TRANSPORT))  # the same second: not counted again
    assert o.active and not health.readiness()[0]
    clock.now += 1.5
    watch.on_error(KafkaError(KafkaError._TRANSPORT))
    counted = value(registry, "rating_retries_total", component="store", reason="transport")
    assert counted == 1
    assert value(registry, "rating_retries_total", component="store", reason="all_brokers_down")

    async def probe_twice() -> None:
        for _ in range(2):
            watch.check()
            assert watch._probing is not None
            await watch._probing

    asyncio.run(probe_twice())
    assert not o.active and health.readiness()[0]
    # A late report from another producer right after the end is not a new outage...
    clock.now += 1.0
    watch.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    assert not o.active
    # ... but one after the settling time is.
    clock.now += 10.0
    watch.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    assert o.active


def test_kafka_watch_probes_now_and_then_and_a_failed_probe_opens_the_outage() -> None:
    """An idle producer reports nothing when the broker goes: the periodic probe does."""
    o, health, _metrics, registry = outage()
    clock = Clock()
    calls: list[float] = []
    broker_up = [True]

    def probe() -> None:
        calls.append(clock.now)
        if not broker_up[0]:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))

    watch = KafkaWatch(o, probe, clock=clock, settle=5.0, every=5.0)

    async def beat(seconds: int) -> None:
        for _ in range(seconds):
            watch.check()
            if watch._probing is not None:
                await watch._probing
            clock.now += 1.0

    asyncio.run(beat(10))
    assert calls == [100.0, 105.0]  # every 5 s while all is well
    assert not o.active
    broker_up[0] = False
    asyncio.run(beat(6))
    assert o.active and not health.readiness()[0]
    failed = calls[2:]
    assert failed[0] == 110.0  # the next regular probe finds the broker gone...
    assert failed[1:] == [111.0, 112.0, 113.0, 114.0, 115.0]  # ... then one every beat
    counted = value(registry, "rating_retries_total", component="store", reason="transport")
    assert counted == len(failed)
    broker_up[0] = True
    asyncio.run(beat(1))  # probed at every beat while the outage is open
    assert not o.active and health.readiness()[0]


def test_client_log_lines_are_kept_out_during_an_outage_and_thinned_before() -> None:
    o, _health, _metrics, _registry = outage()
    clock = Clock()
    quiet = QuietDuringOutage(o, repeat_every=30.0, clock=clock)

    def record(level: int, msg: str) -> logging.LogRecord:
        return logging.LogRecord("aiokafka", level, __file__, 1, msg, ("x",), None)

    connect = "Unable connect to node with id %s"
    assert quiet.filter(record(logging.ERROR, connect))
    clock.now += 1
    assert not quiet.filter(record(logging.ERROR, connect))  # the same kind again: dropped
    assert quiet.filter(record(logging.ERROR, "Unable to update metadata from %s"))
    assert quiet.filter(record(logging.INFO, connect))  # not a complaint: kept
    clock.now += 30
    assert quiet.filter(record(logging.ERROR, connect))  # a while later: once more
    o.failed("transport", "down")
    assert not quiet.filter(record(logging.ERROR, "anything at all %s"))
    assert quiet.filter(record(logging.CRITICAL, "never hidden %s"))
