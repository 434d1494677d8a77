"""Fencing: what a worker writes for a wallet partition, it writes only while it owns it.

Each wallet partition has a transactional Kafka producer of its own, whose
``transactional.id`` is derived from the app id and the partition number
(`transactional_id`). A worker that takes a partition on calls ``init_transactions`` before
it reads the partition back (recovery.py): Kafka then aborts whatever transaction the
previous owner left open and bumps the producer epoch, so from that moment nothing the
previous owner sends under the old epoch can be committed. Everything a batch writes for the
partition (its decisions on ``wallet.events``, their bar / unbar actions, the split-billing
charges routed to other wallets, rejections, and the partition's snapshot on
``wallet.snapshots``) goes out in one transaction, and every reader of those topics reads
``read_committed``. A worker that was paused past its session (SIGSTOP, a long GC, a cut
network) finds its transaction refused as fenced when it resumes: it has written nothing,
and it drops the partition (`Fenced`).

The order matters and is what makes this exact: a new owner fences first and reads the log
second, so the state it rebuilds holds everything that can ever be committed under an
older epoch; whatever the old owner still sends is aborted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, NoReturn

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from .kafka_errors import kafka_error, kafka_text
from .kafka_security import client_config
from .producer import PRODUCER_CONFIG, WORKER_DELIVERY_TIMEOUT_MS, Outbox
from .topics import StreamError

TRANSACTION_TIMEOUT_MS = WORKER_DELIVERY_TIMEOUT_MS + 60_000
"""How long the broker lets a transaction stay open before it aborts it on its own: longer
than a batch may wait out a broker outage (librdkafka requires it to be at least
``message.timeout.ms``, the worker's delivery timeout). A partition whose owner stopped with
a transaction open holds back ``read_committed`` readers of that partition until a new
owner fences it, or this long at most."""

TIMEOUT = 60.0
"""Seconds to wait for ``init_transactions``."""
COMMIT_TIMEOUT = WORKER_DELIVERY_TIMEOUT_MS / 1000 + 30
"""Seconds a commit waits for its records and the broker's answer: a broker outage shorter
than the delivery timeout is waited out (the outage is reported meanwhile by the worker's
`KafkaWatch`); a longer one fails the batch before its inputs are committed."""

COMMIT_RETRIES = 5

FENCED_CODES = frozenset(
    {
        KafkaError._FENCED,
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        # What produce() raises once the producer is in its fatal (fenced) state.
        KafkaError._FATAL,
    }
)


class Fenced(StreamError):
    """Another producer with this partition's transactional id took over: the partition is
    no longer this worker's, and what its open transaction held is aborted."""


class TransactionFailed(StreamError):
    """A transaction could not be committed for another reason (its records were aborted)."""


def transactional_id(app_id: str, partition: int) -> str:
    """The transactional id of a wallet partition: the same on every worker of the group,
    so a new owner's ``init_transactions`` fences the old owner's producer."""
    return f"{app_id}-wallet-{partition}"


def is_fenced(error: KafkaError) -> bool:
    """A fatal producer error, or one saying a newer epoch exists: the producer can never
    commit again, which here means the partition changed owner."""
    return error.fatal() or error.code() in FENCED_CODES


class PartitionWriter:
    """The transactional producer of one wallet partition.

    ``begin`` opens a transaction, ``produce`` adds records to it (never blocking: see
    producer.Outbox), ``commit`` (blocking: the worker runs it off the event loop) makes them
    visible together or raises `Fenced` or `TransactionFailed`, in which case none of them is.
    """

    def __init__(
        self,
        bootstrap: str,
        app_id: str,
        partition: int,
        max_message_bytes: int | None = None,
        extra: dict[str, Any] | None = None,
        on_error: Callable[[KafkaError], None] | None = None,
    ) -> None:
        self.partition = partition
        self._report = on_error
        self.transactional_id = transactional_id(app_id, partition)
        config = {
            **PRODUCER_CONFIG,
            **client_config(bootstrap),
            "client.id": f"{app_id}-rate-{partition}",
            "transactional.id": self.transactional_id,
            "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
            "message.timeout.ms": WORKER_DELIVERY_TIMEOUT_MS,
            # See producer.BatchProducer: librdkafka checks the uncompressed size.
            "message.max.bytes": min(4 * (max_message_bytes or 1_000_000), 1_000_000_000),
            # A batch waits for its own commit, so lingering only adds latency.
            "linger.ms": 2,
            "error_cb": self._on_error,
            **(extra or {}),
        }
        self.producer = Producer(config)
        self.offsets: dict[tuple[str, int], int] = {}
        """The highest offset acknowledged in the open transaction per (topic, partition)
        it named: that of its last record there, the one whose delivery is reported
        (producer.Outbox). A record placed by its key is not reported."""
        self.last_decision = ""
        """The id of the last decision produced in the open transaction (processor.py)."""
        self.open = False
        self.failures: list[str] = []
        self.outbox = Outbox(self.producer, self._on_delivery, report_each=False)
        self._fatal: KafkaError | None = None

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._fatal = error
        if self._report is not None:
            self._report(error)  # a broker outage, seen by the worker's KafkaWatch

    def _on_delivery(self, error: KafkaError | None, msg: Message) -> None:
        if error is not None:
            # Only the error: the message's accessors raise once the producer is fatal.
            self.failures.append(error.str())
            if is_fenced(error):
                self._fatal = self._fatal or error
            return
        key = (msg.topic() or "", msg.partition() or 0)
        offset = msg.offset() or 0
        if offset > self.offsets.get(key, -1):
            self.offsets[key] = offset

    def _raise(self, what: str, exc: BaseException) -> NoReturn:
        error = kafka_error(exc)
        text = f"wallet partition {self.partition}: {what}: {kafka_text(exc)}"
        if (error is not None and is_fenced(error)) or self._fenced_now():
            raise Fenced(text) from None
        raise TransactionFailed(text) from None

    def _fenced_now(self) -> bool:
        """Whether the producer is fenced, when the error at hand does not say (librdkafka
        reports a fatal error through ``error_cb``, served later, and a call that fails
        meanwhile may surface as a bare SystemError). Asking it to abort answers: a fenced
        producer refuses with its fatal error. Only called on a failing transaction, whose
        records are lost either way."""
        if self._fatal is not None:
            return True
        with contextlib.suppress(Exception):
            self.producer.poll(0)  # serves error_cb
        if self._fatal is not None:
            return True
        try:
            self.producer.abort_transaction(TIMEOUT)
        except KafkaException as exc:
            error = kafka_error(exc)
            return error is not None and is_fenced(error)
        except Exception:  # a producer that cannot even abort is as good as fenced
            return True
        return False

    def init(self, timeout: float = TIMEOUT) -> None:
        """Take the partition's transactional id: fences every earlier producer of it and
        waits until the transaction it left open is aborted. Blocking."""
        try:
            self.producer.init_transactions(timeout)
        except KafkaException as exc:
            self._raise("init_transactions", exc)

    def begin(self) -> None:
        self.offsets = {}
        self.failures = []
        self.last_decision = ""
        self.outbox.clear()  # what an aborted transaction left waiting is not to be sent
        try:
            self.producer.begin_transaction()
        except KafkaException as exc:
            self._raise("begin_transaction", exc)
        self.open = True

    def produce(
        self, topic: str, key: bytes | None, value: bytes, partition: int | None = None
    ) -> None:
        self.outbox.produce((topic, key, value, partition))  # handed over by `commit`

    def commit(self, timeout: float = COMMIT_TIMEOUT) -> None:
        """Commit the open transaction, blocking until Kafka has it (or raising, with the
        transaction aborted). The delivery reports are served first, so ``offsets`` says
        where the transaction's last records landed. A record whose delivery is not
        reported and fails leaves the transaction abortable: ``commit_transaction`` raises."""
        if not self.open:
            return
        self.open = False
        try:
            self.outbox.hand_over()
        except KafkaException as exc:
            self._raise("produce", exc)
        try:
            remaining = self.producer.flush(timeout)
        except (KafkaException, SystemError) as exc:
            self._raise("flush", exc)
        if self._fatal is not None:
            raise Fenced(f"wallet partition {self.partition}: {self._fatal.str()}")
        if remaining or self.failures:
            why = self.failures[:3] or [f"{remaining} records without a delivery report"]
            text = f"wallet partition {self.partition}: delivery failed: {'; '.join(why)}"
            if self._fenced_now():  # otherwise it has aborted the transaction
                raise Fenced(text)
            raise TransactionFailed(text)
        for attempt in range(COMMIT_RETRIES):
            try:
                self.producer.commit_transaction(timeout)
                return
            except KafkaException as exc:
                error = kafka_error(exc)
                if error is not None and error.retriable() and attempt + 1 < COMMIT_RETRIES:
                    continue
                self._raise("commit_transaction", exc)  # aborts it unless fenced

    def close(self) -> None:
        """Give the producer up; an open transaction is left to the broker to abort."""
        with contextlib.suppress(KafkaException, SystemError):  # fenced: nothing to flush
            self.producer.flush(0)
