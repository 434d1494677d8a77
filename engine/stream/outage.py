"""Riding out transient outages: which errors are worth waiting for, how long to wait
between tries, and what an outage looks like from outside (one log line when it starts,
one when it ends, ``/readyz`` not ready meanwhile, a counter of retries and a gauge that
is 1 while a component retries).

A transient error is one that goes away by itself: the broker or the database restarting,
a lost connection, a group coordinator being elected. Retrying it is safe because every
step the sink and the worker retry is idempotent: an append skips the event ids already
stored, an offset commit says the same thing twice, and the idempotent producer's
retries are deduplicated by the broker. A permanent error (bad credentials, a missing
table, a topic that does not exist) is not retried: waiting would not fix it, so the
process stops with a clear message and a non-zero exit, as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from confluent_kafka import KafkaError, KafkaException
from prometheus_client import CollectorRegistry, Counter, Gauge

from ..store.base import StoreUnavailable
from .health import Health
from .kafka_errors import kafka_error

log = logging.getLogger("rating-engine")

T = TypeVar("T")

KAFKA_TRANSIENT = frozenset(
    {
        KafkaError._WAIT_COORD,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TIMED_OUT,
        KafkaError._MSG_TIMED_OUT,
        KafkaError._RESOLVE,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    }
)
"""Kafka errors that mean "the cluster is not reachable or not ready yet"."""


def kafka_transient(error: KafkaError) -> bool:
    """Whether waiting may fix ``error`` (never for a fatal one)."""
    if error.fatal():
        return False
    return error.code() in KAFKA_TRANSIENT


def kafka_reason(error: KafkaError) -> str:
    """A short, bounded label for ``error``: its librdkafka name, lower case."""
    return str(error.name()).strip("_").lower()


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff: ``initial``, doubling, never above ``cap`` seconds.
    No jitter: one sink per partition set retries alone, and a thundering herd of a few
    sinks reconnecting at once is no load for Kafka or PostgreSQL."""

    initial: float = 0.5
    cap: float = 10.0
    factor: float = 2.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        return float(min(self.cap, self.initial * self.factor ** max(0, attempt - 1)))


class RetryMetrics:
    """The two collectors of retrying, added to a process's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.retries = Counter(
            "rating_retries",
            "Retries of an operation that failed with a transient error, by component "
            "(store, kafka, producer) and reason.",
            ["component", "reason"],
            registry=registry,
        )
        self.retrying = Gauge(
            "rating_retrying",
            "1 while the component retries a transient error (an outage under way), else 0.",
            ["component"],
            registry=registry,
        )


class Outage:
    """One component's outage state: opened by a transient failure, closed by a success.

    It logs one line when an outage starts and one when it ends (not one per retry), marks
    the process not ready meanwhile and puts back the readiness it found when it ends.
    """

    def __init__(
        self,
        component: str,
        what: str,
        health: Health,
        metrics: RetryMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.component = component
        self.what = what
        self.health = health
        self.metrics = metrics
        self._clock = clock
        self.since: float | None = None
        self.attempts = 0
        self._reason = ""
        metrics.retrying.labels(component).set(0)

    @property
    def active(self) -> bool:
        return self.since is not None

    def failed(self, reason: str, detail: str) -> int:
        """Record a transient failure; returns the attempt number (1 for the first)."""
        self.metrics.retries.labels(self.component, reason).inc()
        self.attempts += 1
        if self.since is None:
            self.since = self._clock()
            self._reason = reason
            self.metrics.retrying.labels(self.component).set(1)
            log.warning(
                "%s unavailable (%s: %s); retrying with backoff until it is back",
                self.what,
                reason,
                detail,
            )
        self.health.not_ready_for(self.component, f"{self.what} unavailable: {reason}")
        return self.attempts

    def ok(self) -> None:
        """The component worked: close the outage if one was open."""
        if self.since is None:
            return
        lasted = self._clock() - self.since
        log.warning(
            "%s back after %.1fs (%d retries, first error %s)",
            self.what,
            lasted,
            self.attempts,
            self._reason,
        )
        self.since = None
        self.attempts = 0
        self.metrics.retrying.labels(self.component).set(0)
        self.health.not_ready_for(self.component, None)


def retry(
    outage: Outage,
    operation: Callable[[], T],
    classify: Callable[[BaseException], str | None],
    backoff: Backoff,
    stopping: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``operation`` until it succeeds. ``classify`` names the reason of a transient
    exception (``None``: permanent, raised at once). Between tries it sleeps the backoff's
    delay in short steps; when ``stopping()`` turns true it raises :class:`Stopped`
    instead of trying again."""
    while True:
        try:
            result = operation()
        except Exception as exc:
            reason = classify(exc)
            if reason is None:
                raise
            attempt = outage.failed(reason, str(exc).strip().splitlines()[0] if str(exc) else "")
            deadline = time.monotonic() + backoff.delay(attempt)
            while time.monotonic() < deadline:
                outage.health.beat()  # waiting is what the loop should do now: alive
                if stopping():
                    raise Stopped(f"stopped while {outage.what} was unavailable") from exc
                sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            continue
        outage.ok()
        return result


class Stopped(Exception):
    """The process was told to stop while it waited for a component to come back."""


def classify_store(exc: BaseException) -> str | None:
    """The reason of a transient store error (the store raises StoreUnavailable)."""
    if isinstance(exc, StoreUnavailable):
        return exc.reason
    return None


def classify_kafka(exc: BaseException) -> str | None:
    """The reason of a transient Kafka error raised by confluent-kafka (a KafkaException
    without a KafkaError is not one)."""
    error = kafka_error(exc) if isinstance(exc, KafkaException) else None
    return kafka_reason(error) if error is not None and kafka_transient(error) else None


class KafkaWatch:
    """A worker's view of the broker, from its producers' client-level errors (``error_cb``):
    a transient one opens the outage (one retry counted a second at most, librdkafka
    reconnecting every few hundred milliseconds). :meth:`check`, called from the event
    loop's heartbeat, also asks the cluster for metadata in a thread, every ``every``
    seconds, and at each heartbeat while an outage is open: a failure opens one (an idle
    producer keeps no connection, so it reports nothing when the broker goes away while
    the worker has nothing to send), an answer ends it. librdkafka itself keeps retrying
    the records meanwhile.

    For ``settle`` seconds after an outage ends, errors are not taken for a new one: the
    producers that were not probed report their own lost connections late."""

    def __init__(
        self,
        outage: Outage,
        probe: Callable[[], object],
        clock: Callable[[], float] = time.monotonic,
        settle: float = 5.0,
        every: float = 2.0,
    ) -> None:
        self.outage = outage
        self._probe = probe
        self._clock = clock
        self._settle = settle
        self._every = every
        self._probed = -every
        self._counted = 0.0
        self._ended = -settle
        self._probing: asyncio.Future[None] | None = None

    def on_error(self, error: KafkaError) -> None:
        if error.fatal() or not kafka_transient(error):
            return
        now = self._clock()
        if self.outage.active and now - self._counted < 1.0:
            return
        if not self.outage.active and now - self._ended < self._settle:
            return
        self._counted = now
        self.outage.failed(kafka_reason(error), error.str())

    def check(self) -> None:
        if self._probing is not None and not self._probing.done():
            return
        now = self._clock()
        if not self.outage.active and now - self._probed < self._every:
            return
        self._probed = now
        self._probing = asyncio.get_running_loop().run_in_executor(None, self._probe_once)

    def _probe_once(self) -> None:
        try:
            self._probe()
        except KafkaException as exc:
            error = kafka_error(exc)
            if error is not None:
                self.on_error(error)
            return
        self._ended = self._clock()
        self.outage.ok()


class QuietDuringOutage(logging.Filter):
    """Keeps a Kafka client's per-attempt lines out of the log (aiokafka logs every failed
    connection and request, dozens a second): none while the outage is open (it was logged
    once when it began and will be once when it ends), and before it is noticed, each kind
    of warning or error (its message template) once per ``repeat_every`` seconds."""

    def __init__(
        self,
        outage: Outage,
        repeat_every: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.outage = outage
        self.repeat_every = repeat_every
        self._clock = clock
        self._seen: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.ERROR:
            return True
        if self.outage.active:
            return False
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, str(record.msg))
        now = self._clock()
        last = self._seen.get(key)
        if last is not None and now - last < self.repeat_every:
            return False
        self._seen[key] = now
        return True


def quiet_client_logs(outage: Outage, prefix: str = "aiokafka") -> None:
    """Install :class:`QuietDuringOutage` on ``prefix`` and every logger below it (a filter
    on a logger applies only to records logged there, not to its children's)."""
    quiet = QuietDuringOutage(outage)
    names = [n for n in logging.root.manager.loggerDict if n.startswith(prefix + ".")]
    for name in [prefix, *names]:
        logging.getLogger(name).addFilter(quiet)
