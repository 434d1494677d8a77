"""The sink's second job: every catalog revision on ``catalog.revisions`` into the store.

Decisions name the revision they were decided with; the store keeps each revision's source
beside the events, so rebuild and replay can decide again with the same catalog without
Kafka. The topic is small (one record per revision) and ``put_revision`` is idempotent, so
the keeper reads it from the beginning at every start, with no group and no offsets, and
then follows it in a thread of its own beside the sink's loop.

A store that is out of reach is waited out (the revision is offered again with backoff); a
number stored with another catalog (two publishers raced for it) is logged and skipped,
since the sink must not stop storing events for it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from ..store import EventStore, StoredRevision, StoreError, StoreUnavailable
from .kafka_security import client_config
from .outage import Backoff, kafka_transient
from .revisions import CATALOG_GROUP, decode_revision
from .topics import Topics

log = logging.getLogger(__name__)

POLL = 0.5


class RevisionKeeper:
    """Stores each revision read from ``catalog.revisions``; ``start`` / ``stop``."""

    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        store: EventStore,
        backoff: Backoff | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topics.catalog_revisions.name
        self.store = store
        self.backoff = backoff or Backoff()
        self.stored = 0
        """Revisions this keeper stored that the store did not have."""
        self.seen = 0
        """Revision records read."""
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._caught_up = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> RevisionKeeper:
        consumer = Consumer(
            {
                **client_config(self.bootstrap),
                "group.id": CATALOG_GROUP,  # named for the ACLs; never joined, never committed
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": True,  # tells when it has read all there is
                "log_level": 0,
            }
        )
        consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        self._thread = threading.Thread(
            target=self._run, args=(consumer,), name="revision-keeper", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, catch_up: float = 10.0) -> None:
        """Stop, after storing what the topic holds (``catch_up`` seconds at most): a sink
        that ran for a moment still keeps the revisions published before it started."""
        self._caught_up.wait(catch_up if self.error is None else 0)
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self, consumer: Any) -> None:
        try:
            while not self._stop.is_set():
                for message in consumer.consume(100, POLL):
                    self._take(message)
        except Exception as exc:  # kept for whoever looks; the sink's events go on
            log.exception("storing catalog revisions from %s stopped", self.topic)
            self.error = exc
            self._caught_up.set()
        finally:
            consumer.close()

    def _take(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                self._caught_up.set()
                return
            if kafka_transient(error):
                return
            raise StoreError(f"reading {self.topic}: {error.str()}")
        value = message.value()
        if value is None:
            return
        record = decode_revision(value)
        self.seen += 1
        self._put(StoredRevision(*msgspec.structs.astuple(record)))

    def _put(self, revision: StoredRevision) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                if self.store.put_revision(revision):
                    self.stored += 1
                return
            except StoreUnavailable as exc:
                attempt += 1
                log.warning("storing catalog revision %d: %s", revision.revision, exc)
                self._stop.wait(self.backoff.delay(attempt))
            except StoreError as exc:
                log.error("catalog revision %d not stored: %s", revision.revision, exc)
                return
