"""The sink: ``wallet.events`` into the event store, then (optionally) into ClickHouse.

Delivery is at least once and appending is idempotent on event id, so every event is
stored exactly once: offsets are committed only after the store's transaction is durable,
and a batch delivered again after a crash between the write and the commit adds nothing.
The ClickHouse projections follow the store, not the topic, so the live projections and a
rebuild read the same log in the same order.

Outages of Kafka or of the store's server are waited out (outage.py): a transient error of
an append, an offset commit or a read is retried with capped exponential backoff, the sink
reports not ready meanwhile, and it carries on where it was when the component is back. A
retried append after a lost connection stores nothing twice (the store skips event ids it
has), and the batch's offsets are still committed only after the append returned.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Protocol, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from ..codec import decode_decision
from ..store.base import EventStore, append_decisions
from .health import Health
from .kafka_errors import kafka_error, kafka_text
from .kafka_security import client_config
from .metrics import SinkMetrics
from .outage import Backoff, Outage, Stopped, classify_store, kafka_reason, kafka_transient, retry
from .store_snapshots import StoreSnapshots
from .topics import StreamError, Topics

POLL_TIMEOUT = 0.5
REFRESH_EVERY = 1.0
"""Seconds between lag measurements and projection runs: both cost a round trip."""
COMMIT_REPORT_WAIT = 30.0
"""Seconds to wait for an asynchronous commit's report before sending the offsets again
(committing the same offsets twice is harmless)."""


T = TypeVar("T")

_REBALANCE_ERRORS = (
    KafkaError._NO_OFFSET,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError._STATE,
)


class Projection(Protocol):
    """What the sink needs of the ClickHouse projector: apply what the store has gained."""

    def project(self, store: EventStore) -> int: ...


@dataclass
class SinkSettings:
    bootstrap: str
    group: str = "rating-engine-sink"
    batch_size: int = 2000
    """Most decision records appended in one store transaction."""
    idle_exit: float = 0.0
    """Stop after this many seconds without a record (0: run until signalled)."""
    backoff: Backoff = field(default_factory=Backoff)
    """Waits between retries of a transient Kafka or store error."""
    snapshot_every: int = 100_000
    """Take wallet snapshots in the store after this many events appended since the last
    round, of the wallets they belong to (0: never). See store_snapshots.py."""


@dataclass
class SinkProgress:
    records: int = 0
    stored: int = 0
    duplicates: int = 0
    position: int = 0
    lag: dict[int, int] = field(default_factory=dict)


class Sink:
    """One consumer of ``wallet.events`` in a group; several share the partitions."""

    def __init__(
        self,
        settings: SinkSettings,
        topics: Topics,
        store: EventStore,
        projection: Projection | None = None,
        metrics: SinkMetrics | None = None,
        health: Health | None = None,
        store_url: str | None = None,
    ) -> None:
        """``store_url``: for the store snapshots' own process (store_snapshots.py)."""
        self.settings = settings
        self.topic = topics.wallet_events.name
        self.store = store
        self.projection = projection
        self.metrics = metrics or SinkMetrics()
        self.health = health or Health()
        self.kafka = Outage("kafka", "Kafka", self.health, self.metrics.retry)
        self.store_outage = Outage("store", "the event store", self.health, self.metrics.retry)
        self._stop = False
        self.progress = SinkProgress(position=self._retry_store(store.position))
        self.snapshots = StoreSnapshots(store, settings.snapshot_every, self.metrics, store_url)
        self._refreshed = 0.0
        self._consumer = Consumer(
            {
                **client_config(settings.bootstrap),
                "group.id": settings.group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
                # Only decisions their partition's owner committed: a fenced worker's are
                # aborted (engine/stream/fencing.py). librdkafka's default, said here.
                "isolation.level": "read_committed",
                "session.timeout.ms": 10_000,
                "heartbeat.interval.ms": 1_000,
                "max.poll.interval.ms": 300_000,
                "on_commit": self._on_commit,
                # Connection errors come to `_on_error` and make one log line per outage,
                # not librdkafka's line per reconnection attempt.
                "error_cb": self._on_error,
                "log_level": 0,
            }
        )
        self._pending: dict[tuple[str, int], int] = {}
        """Per partition, the offset after the last record durably stored, not yet
        committed: commits are asynchronous, so the loop keeps serving the group (a
        synchronous commit waiting for an absent coordinator blocks the rebalance that
        would bring it back)."""
        self._in_flight: dict[tuple[str, int], int] | None = None
        self._commit_failures = 0
        self._next_commit = 0.0
        self._sent_at = 0.0
        self._commit_error: KafkaError | None = None
        self._counted_at = 0.0

    def stop(self, *_: object) -> None:
        self._stop = True

    def run(self, on_batch: Callable[[SinkProgress], None] | None = None) -> SinkProgress:
        assigned = False

        def on_assign(consumer: Any, partitions: list[TopicPartition]) -> None:
            nonlocal assigned
            assigned = True
            self.health.ready(None if partitions else "no wallet.events partitions assigned")

        def on_revoke(consumer: Any, partitions: list[TopicPartition]) -> None:
            self.health.ready("rebalancing")
            # Their next owner reads what was not committed again; the append skips it.
            for tp in partitions:
                self._pending.pop((tp.topic, tp.partition), None)

        self._consumer.subscribe([self.topic], on_assign=on_assign, on_revoke=on_revoke)
        idle_since = time.monotonic()
        try:
            while not self._stop:
                self.health.beat()
                messages = self._consumer.consume(self.settings.batch_size, POLL_TIMEOUT)
                kept = [m for m in messages if self._ok(m) and m.value() is not None]
                self._raise_commit_error()
                if kept:
                    try:
                        self._write(kept)
                    except Stopped:
                        break  # the batch is not committed: it comes again, stored once
                    idle_since = time.monotonic()
                self._commit_pending()
                now = time.monotonic()
                if now - self._refreshed >= REFRESH_EVERY or not kept:
                    try:
                        self._refresh()
                    except Stopped:
                        break
                    self._refreshed = now
                if on_batch is not None:
                    on_batch(self.progress)
                if not assigned:
                    idle_since = now  # idle counts from joining the group, not from starting
                elif self.settings.idle_exit and now - idle_since >= self.settings.idle_exit:
                    break
            # Projects once more on the way out, so the projections hold all that is stored
            # (tried once when stopping: a store that is away is not waited for).
            with contextlib.suppress(Stopped):
                self._refresh()
            self._last_commit()
        finally:
            self._consumer.close()
            self.snapshots.close()  # a round under way ends before the store is closed
        return self.progress

    def _ok(self, message: Any) -> bool:
        error = message.error()
        if error is None:
            return True
        if error.code() == KafkaError._PARTITION_EOF:
            return False
        if kafka_transient(error):
            self._kafka_down(error)
            return False
        raise StreamError(f"reading {self.topic}: {error.str()}")

    def _on_error(self, error: KafkaError) -> None:
        """librdkafka's client-level errors (served inside ``consume``)."""
        if error.fatal():
            self._commit_error = error
        elif kafka_transient(error):
            self._kafka_down(error)

    def _kafka_down(self, error: KafkaError) -> None:
        """librdkafka reconnects by itself, every few hundred milliseconds: count one retry
        a second at most. The outage ends at the next commit or watermark query that
        succeeds."""
        now = time.monotonic()
        if self.kafka.active and now - self._counted_at < 1.0:
            return
        self._counted_at = now
        self.kafka.failed(kafka_reason(error), error.str())

    def _retry_store(self, operation: Callable[[], T]) -> T:
        return retry(
            self.store_outage, operation, classify_store, self.settings.backoff, self._stopping
        )

    def _stopping(self) -> bool:
        return self._stop

    def _write(self, messages: list[Any]) -> None:
        decisions = [decode_decision(m.value()) for m in messages]
        events = sum(len(d.events) for d in decisions)
        # Durable when it returns; after a lost connection the retry skips what was stored.
        stored = self._retry_store(lambda: append_decisions(self.store, decisions))
        for tp in _next_offsets(messages):  # only now: the write is on disk
            key = (tp.topic, tp.partition)
            self._pending[key] = max(self._pending.get(key, -1), tp.offset)
        self._commit_pending()
        position = self._retry_store(self.store.position)
        p = self.progress
        p.records += len(messages)
        p.stored += stored
        p.duplicates += events - stored
        p.position = position
        if stored:
            self.snapshots.appended({d.wallet_id for d in decisions if d.events}, stored)
        m = self.metrics
        m.records.inc(len(messages))
        m.stored.inc(stored)
        m.duplicates.inc(events - stored)
        m.store_position.set(p.position)

    def _commit_pending(self) -> None:
        """Send the offsets stored since the last commit, unless a commit is under way or
        the backoff after a failed one has not passed."""
        now = time.monotonic()
        if not self._pending or now < self._next_commit:
            return
        if self._in_flight is not None and now - self._sent_at < COMMIT_REPORT_WAIT:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(self._pending.items())]
        self._in_flight = dict(self._pending)
        self._sent_at = now
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            self._in_flight = None
            # Never None here (None is a success to `_committed`): an exception without a
            # Kafka error is a refusal with no code to call it transient.
            error = kafka_error(exc) or KafkaError(KafkaError._FAIL, kafka_text(exc))
            self._committed(error, offsets)

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """librdkafka's report of an asynchronous commit (served inside ``consume``)."""
        self._in_flight = None
        self._committed(error, partitions)

    def _committed(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is None:
            error = next((tp.error for tp in partitions if tp.error is not None), None)
        if error is None:
            for tp in partitions:
                key = (tp.topic, tp.partition)
                if self._pending.get(key, -1) <= tp.offset:
                    self._pending.pop(key, None)
            self._commit_failures = 0
            self.kafka.ok()
            self.metrics.committed_at.set(time.time())
        elif error.code() in _REBALANCE_ERRORS:
            # A rebalance took the partitions away: their next owner reads them again and
            # the idempotent append makes that harmless.
            for tp in partitions:
                self._pending.pop((tp.topic, tp.partition), None)
        elif kafka_transient(error):
            self._commit_failures += 1
            self._counted_at = time.monotonic()
            self.kafka.failed(kafka_reason(error), f"committing offsets: {error.str()}")
            self._next_commit = time.monotonic() + self.settings.backoff.delay(
                self._commit_failures
            )
        else:
            self._commit_error = error

    def _raise_commit_error(self) -> None:
        if self._commit_error is not None:
            raise StreamError(f"consuming {self.topic}: {self._commit_error.str()}")

    def _last_commit(self, wait: float = 5.0) -> None:
        """At a stop, try once more to commit what was stored (a few seconds at most: what
        stays uncommitted is read again by the next owner and stored once)."""
        if self.kafka.active:
            return
        self._next_commit = 0.0
        self._commit_pending()
        deadline = time.monotonic() + wait
        while self._in_flight is not None and time.monotonic() < deadline:
            self._consumer.poll(0.1)  # serves the commit's report; records are not kept

    def _refresh(self) -> None:
        self._measure_lag()
        if self.projection is not None:
            projection = self.projection
            self._retry_store(lambda: projection.project(self.store))
            self.metrics.projected_position.set(self._retry_store(self.store.position))

    def _measure_lag(self) -> None:
        try:
            assigned = self._consumer.assignment()
            self.health.ready(None if assigned else "no wallet.events partitions assigned")
            if not assigned:
                return
            positions = self._consumer.position(assigned)
        except KafkaException:
            return
        if self.kafka.active:
            self._probe_kafka()
        for tp in positions:
            try:
                # The high watermark of the last fetch response: no round trip, which behind
                # a fetch waiting for data would cost up to fetch.wait.max.ms per partition.
                _low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(tp.topic, tp.partition), cached=True
                )
            except KafkaException:
                continue
            if high < 0:
                continue  # nothing fetched from this partition yet
            behind = max(0, high - tp.offset) if tp.offset >= 0 else high
            self.progress.lag[tp.partition] = behind
            self.metrics.lag.labels(str(tp.partition)).set(behind)

    def _probe_kafka(self) -> None:
        """During an outage, ask the cluster for the topic's metadata: an answer ends it."""
        try:
            self._consumer.list_topics(self.topic, timeout=1.0)
        except KafkaException as exc:
            error = kafka_error(exc)
            if error is not None and kafka_transient(error):
                self._kafka_down(error)
            return
        self.kafka.ok()


def _next_offsets(messages: list[Any]) -> list[TopicPartition]:
    """The offset to commit per partition: the one after the last message of the batch."""
    last: dict[tuple[str, int], int] = {}
    for m in messages:
        key = (m.topic(), m.partition())
        last[key] = max(last.get(key, -1), m.offset())
    return [TopicPartition(t, p, offset + 1) for (t, p), offset in sorted(last.items())]


def open_store_waiting(
    url: str, health: Health, metrics: SinkMetrics, backoff: Backoff | None = None
) -> EventStore:
    """The store at ``url``, waiting (not ready, alive, retries counted) while its server
    is out of reach, so that a sink started during a database outage does not exit. A
    permanent error (bad credentials, no such database) is raised at once."""
    from ..store import open_store

    outage = Outage("store", "the event store", health, metrics.retry)
    return retry(outage, lambda: open_store(url), classify_store, backoff or Backoff())


def install_signal_handlers(sink: Sink) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        sink.stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
