"""Send CDR files and commands to Kafka: ``rating-engine publish`` and ``rating-engine command``.

CDR lines go to ``cdr.raw`` byte for byte. The publisher does not validate them (the worker
does, and sends what it cannot rate to ``cdr.rejected`` with the original bytes); it only
reads the ICCID for the key, cheaply. A line whose ICCID cannot be read is still sent,
without a key, so the worker rejects it visibly: nothing is dropped here.

It produces with the worker's `PRODUCER_CONFIG` (producer.py), so a key lands on the same
partition whoever produced it.

It hands over no record before the cluster has given the producer its id (producer_id.py);
a ``--rate`` is offered by a token bucket (pacing.py).
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Annotated, Any

import msgspec
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from tqdm import tqdm

from ..codec import encode
from ..domain import Command
from ..offline.inputs import InputError
from .admin import cluster_metadata
from .kafka_errors import kafka_error, kafka_text
from .kafka_security import client_config
from .pacing import TokenBucket
from .producer import DRAIN_GRACE, PRODUCER_CONFIG
from .producer_id import ProducerIdWatch
from .topics import StreamError, TopicSpec

POLL_EVERY = 512
"""Serve delivery callbacks (and refresh the progress bar) once per this many records."""


class _IccidOnly(msgspec.Struct):
    """The one field the publisher reads; every other field is skipped unread."""

    iccid: Annotated[str, msgspec.Meta(min_length=1)]


_iccid_decoder = msgspec.json.Decoder(_IccidOnly)


def iccid_key(line: bytes) -> bytes | None:
    """The record's ICCID as a Kafka key, or ``None`` when the line is not a JSON object
    with a non-empty string ``iccid`` (the record is then sent without a key)."""
    try:
        return _iccid_decoder.decode(line).iccid.encode()
    except msgspec.MsgspecError:
        return None


class Delivery(msgspec.Struct, frozen=True):
    """Where one command landed."""

    command_id: str
    type: str
    wallet_id: str
    partition: int | None
    offset: int | None
    error: str | None = None


class PublishResult(msgspec.Struct):
    """What a publish run did; ``--json`` prints it."""

    input: str
    topic: str
    bootstrap: str
    records: int = 0
    """Non-blank lines (or commands) handed to the producer."""
    delivered: int = 0
    failed: int = 0
    unkeyed: int = 0
    """Records sent without a key because their ICCID could not be read."""
    blank: int = 0
    seconds: float = 0.0
    errors: dict[str, int] = {}
    """Why records failed, with how many failed that way."""
    interrupted: bool = False
    stopped: str | None = None
    """Why the producer gave up before the end of the input (a fatal Kafka error)."""
    deliveries: list[Delivery] = []

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not self.interrupted and self.stopped is None


class _Sender:
    """One idempotent producer for one topic, counting what the broker acknowledged."""

    def __init__(self, bootstrap: str, topic: TopicSpec, result: PublishResult) -> None:
        self.topic = topic.name
        self.result = result
        self.fatal: KafkaError | None = None
        self.producer_id = ProducerIdWatch()
        self._reported: set[str] = set()
        try:
            self.producer = Producer(
                {
                    **PRODUCER_CONFIG,
                    **client_config(bootstrap),
                    **self.producer_id.config(),
                    "error_cb": self.on_error,
                }
            )
        except KafkaException as exc:
            raise StreamError(
                f"cannot create a producer for {bootstrap!r}: {kafka_text(exc)}"
            ) from None
        metadata = cluster_metadata(self.producer, bootstrap, topic.name)
        found = metadata.topics.get(topic.name)
        # Other errors (no leader yet, just after creation) are transient: librdkafka retries.
        if found is None or (
            found.error is not None and found.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
        ):
            raise StreamError(
                f"topic {topic.name} does not exist on {bootstrap}: create the topics with "
                "`rating-engine topics apply`"
            )
        self.producer_id.wait(self.wait, lambda: self.fatal is not None)

    def on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self.fatal = error
        # Say each kind of trouble once (a broker that went away repeats it every second).
        text = error.str()
        if text not in self._reported:
            self._reported.add(text)
            tqdm.write(f"rating-engine: kafka: {text}", file=sys.stderr)

    def on_delivery(self, error: KafkaError | None, _msg: Message) -> None:
        if error is None:
            self.result.delivered += 1
        else:
            self.failed(error.str())

    def failed(self, why: str, count: int = 1) -> None:
        self.result.failed += count
        self.result.errors[why] = self.result.errors.get(why, 0) + count

    def send(
        self,
        key: bytes | None,
        value: bytes,
        on_delivery: Callable[[KafkaError | None, Message], None] | None = None,
    ) -> None:
        """Queue one record, waiting for room when the local queue is full."""
        self.result.records += 1
        while True:
            try:
                self.producer.produce(
                    self.topic, value=value, key=key, on_delivery=on_delivery or self.on_delivery
                )
                return
            except BufferError:
                # The queue holds queue.buffering.max.messages records: let the broker
                # catch up (serving delivery reports) instead of spinning.
                self.producer.poll(0.1)
            except KafkaException as exc:
                # Refused before it left (e.g. larger than message.max.bytes): counted, not lost.
                self.failed(kafka_text(exc))
                return

    def stopped(self) -> bool:
        """Whether the producer hit a fatal error (it can send nothing more); recorded."""
        if self.fatal is not None and self.result.stopped is None:
            self.result.stopped = f"the producer stopped: {self.fatal.str()}"
        return self.fatal is not None

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds`` while serving delivery reports (it returns early when
        some arrive: a caller that needs the full wait asks again)."""
        try:
            self.producer.poll(seconds)
        except KafkaException as exc:
            self._fatal(exc)

    def _fatal(self, exc: KafkaException) -> None:
        """A fatal error librdkafka raised while serving reports (an idempotent producer
        refused by the cluster's ACLs, say): recorded as `stopped` says, not a traceback."""
        error = kafka_error(exc)
        if error is None or not error.fatal():
            raise exc
        self.on_error(error)

    def drain(self, bar: tqdm[Any] | None, timeout: float) -> None:
        """Wait for every queued record's delivery report."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                remaining = self.producer.flush(0.5)
            except KafkaException as exc:
                self._fatal(exc)  # nothing more can be delivered
                self.failed("the producer stopped before it was delivered", len(self.producer))
                return
            if bar is not None:
                bar.update(self.result.delivered + self.result.failed - bar.n)
            if remaining == 0:
                return
            if time.monotonic() >= deadline:
                self.failed("no delivery report before the deadline", remaining)
                return


def _drain_timeout() -> float:
    return PRODUCER_CONFIG["message.timeout.ms"] / 1000 + DRAIN_GRACE


def _open(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None


def _records(handle: IO[bytes]) -> Iterator[bytes | None]:
    """Each line without its line ending; ``None`` for a blank line."""
    for line in handle:
        value = line.rstrip(b"\r\n")
        yield None if not value or value.isspace() else value


def _count_records(path: Path) -> int:
    with _open(path) as handle:
        return sum(1 for value in _records(handle) if value is not None)


def publish_cdrs(
    path: Path,
    topic: TopicSpec,
    bootstrap: str,
    rate: float | None = None,
    progress: bool = False,
) -> PublishResult:
    """Send every non-blank line of ``path`` to ``topic``, keyed by its ICCID."""
    result = PublishResult(str(path), topic.name, bootstrap)
    with _open(path) as handle:  # Opened first: a missing file is reported before connecting.
        total = _count_records(path) if progress else None
        sender = _Sender(bootstrap, topic, result)
        bucket = TokenBucket(rate) if rate else None
        bar = tqdm(
            total=total, unit=" records", disable=not progress, file=sys.stderr, dynamic_ncols=True
        )
        started = time.monotonic()
        with bar:
            try:
                for value in _records(handle):
                    if value is None:
                        result.blank += 1
                        continue
                    key = iccid_key(value)
                    if key is None:
                        result.unkeyed += 1
                    if bucket is not None:
                        while (pause := bucket.delay()) > 0:
                            sender.wait(pause)
                        bucket.take()
                    sender.send(key, value)
                    if result.records % POLL_EVERY == 0:
                        sender.wait(0)
                        bar.update(result.delivered + result.failed - bar.n)
                        if sender.stopped():
                            break
            except KeyboardInterrupt:
                # Stop reading, but still wait for what was already handed over, so the
                # summary says truthfully what reached the broker.
                result.interrupted = True
            sender.drain(bar, _drain_timeout())
            sender.stopped()  # A fatal error during the drain is reported too.
    result.seconds = time.monotonic() - started
    return result


def publish_commands(
    commands: Sequence[Command],
    topic: TopicSpec,
    bootstrap: str,
    source: str,
    progress: bool = False,
) -> PublishResult:
    """Send ``commands`` to ``topic``, each encoded by the codec and keyed by its wallet.

    Records are handed to librdkafka, which batches them (``linger.ms``); delivery reports
    are served every `POLL_EVERY` records and once at the end, never waited for one by one."""
    result = PublishResult(source, topic.name, bootstrap)
    sender = _Sender(bootstrap, topic, result)
    placed: list[Delivery | None] = [None] * len(commands)

    def recorder(index: int, cmd: Command) -> Callable[[KafkaError | None, Message], None]:
        def on_delivery(error: KafkaError | None, msg: Message) -> None:
            sender.on_delivery(error, msg)
            placed[index] = Delivery(
                cmd.command_id,
                type(cmd).__name__,
                cmd.wallet_id,
                msg.partition() if error is None else None,
                msg.offset() if error is None else None,
                None if error is None else error.str(),
            )

        return on_delivery

    bar = tqdm(
        total=len(commands),
        unit=" commands",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    started = time.monotonic()
    with bar:
        try:
            for index, cmd in enumerate(commands):
                sender.send(cmd.wallet_id.encode(), encode(cmd), recorder(index, cmd))
                if index % POLL_EVERY == 0:
                    sender.wait(0)
                    bar.update(result.delivered + result.failed - bar.n)
                    if sender.stopped():
                        break
        except KeyboardInterrupt:
            result.interrupted = True  # what was handed over is still waited for
        sender.drain(bar, _drain_timeout())
        sender.stopped()
    result.seconds = time.monotonic() - started
    result.deliveries = [d for d in placed if d is not None]
    return result


def derived_command_id(kind: str, fields: dict[str, str | None]) -> str:
    """A command id that is a function of the arguments, so running the same CLI call
    twice (a retry after a timeout) yields the same id and the wallet applies it once."""
    canonical = encode({"type": kind, **{k: v for k, v in sorted(fields.items()) if v is not None}})
    return f"cli-{kind}-{hashlib.sha256(canonical).hexdigest()[:24]}"


def render(result: PublishResult) -> str:
    """The final summary line (and one line per kind of failure)."""
    per_second = result.delivered / result.seconds if result.seconds > 0 else 0.0
    extras = []
    if result.unkeyed:
        extras.append(f"{result.unkeyed:,} without a readable ICCID, sent unkeyed")
    if result.blank:
        extras.append(f"{result.blank:,} blank lines skipped")
    if result.interrupted:
        extras.append("interrupted before the end of the input")
    if result.stopped:
        extras.append(result.stopped)
    lines = [
        f"{result.input} -> {result.topic}: {result.delivered:,} delivered, "
        f"{result.failed:,} failed in {result.seconds:.1f} s ({per_second:,.0f} records/s)"
        + (f"; {'; '.join(extras)}" if extras else "")
    ]
    lines.extend(f"  failed: {count:,} x {why}" for why, count in result.errors.items())
    return "\n".join(lines)
