"""The KafkaError inside a confluent-kafka exception (engine/stream/kafka_errors.py), and
the call sites that read it, without a broker: a KafkaException carrying plain text or
nothing is reported as what it says, never an IndexError or AttributeError."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from prometheus_client import CollectorRegistry

from engine.store import open_store
from engine.stream import acls, admin, publisher, revisions, sink
from engine.stream.health import Health
from engine.stream.kafka_errors import kafka_error, kafka_text
from engine.stream.outage import KafkaWatch, Outage, RetryMetrics, classify_kafka
from engine.stream.topics import REPO_TOPICS, StreamError, Topics, load_topics

TRANSPORT = KafkaError(KafkaError._TRANSPORT)
WITHOUT_ERROR = [KafkaException(), KafkaException("text"), ValueError("text")]


def raised(exc: BaseException, under: BaseException, how: str) -> BaseException:
    """``exc`` raised while ``under`` was handled, ``from`` it when ``how`` says so."""
    try:
        try:
            raise under
        except BaseException as inner:
            if how == "cause":
                raise exc from inner
            raise exc  # noqa: B904 (the implicit chain, __context__, is the point)
    except BaseException as outer:
        return outer


def test_the_error_is_found_directly_and_through_the_chain() -> None:
    assert kafka_error(KafkaException(TRANSPORT)) is TRANSPORT
    for how in ("cause", "context"):
        chained = raised(SystemError("callback failed"), KafkaException(TRANSPORT), how)
        assert chained.__cause__ if how == "cause" else chained.__context__
        assert kafka_error(chained) is TRANSPORT
        assert kafka_text(chained) == "Local: Broker transport failure"


@pytest.mark.parametrize("exc", WITHOUT_ERROR, ids=repr)
def test_no_error_without_a_kafka_error(exc: BaseException) -> None:
    assert kafka_error(exc) is None
    assert kafka_text(exc) == str(exc)


def test_the_text_is_the_errors_own_not_its_repr() -> None:
    error = KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "denied")
    assert kafka_text(KafkaException(error)) == "denied"
    assert kafka_text(KafkaException(TRANSPORT)) == TRANSPORT.str() != str(TRANSPORT)
    assert kafka_text(KafkaException()) == ""
    assert kafka_text(KafkaException("text")) == "text"


# --- The call sites -------------------------------------------------------------------


def failed(exc: BaseException) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_exception(exc)
    return future


class Admin:
    """An AdminClient of a cluster with no topics, whose requests fail with ``exc``."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def list_topics(self, topic: str | None = None, timeout: float = 0) -> Any:
        return SimpleNamespace(brokers={1: "b"}, topics={})

    def create_topics(self, new: list[Any], **_: Any) -> dict[str, Future[Any]]:
        return {t.topic: failed(self.exc) for t in new}

    def describe_configs(self, resources: list[Any], **_: Any) -> dict[Any, Future[Any]]:
        return {r: failed(self.exc) for r in resources}

    def create_acls(self, bindings: list[Any], **_: Any) -> dict[Any, Future[Any]]:
        return {b: failed(self.exc) for b in bindings}


@pytest.fixture
def topics() -> Topics:
    return load_topics(REPO_TOPICS, environ={})


def test_classify_kafka_needs_a_kafka_error_of_its_own() -> None:
    assert classify_kafka(KafkaException(TRANSPORT)) == "transport"
    for exc in WITHOUT_ERROR:
        assert classify_kafka(exc) is None
    # Only the exception itself: one raised from a Kafka error is not retried as it.
    assert classify_kafka(raised(SystemError(), KafkaException(TRANSPORT), "cause")) is None


def test_a_probe_failing_without_a_kafka_error_opens_no_outage() -> None:
    outage = Outage("kafka", "Kafka", Health(), RetryMetrics(CollectorRegistry()))

    def probe() -> None:
        raise KafkaException("text")

    KafkaWatch(outage, probe)._probe_once()
    assert not outage.active


def test_no_broker_is_reported_with_a_text_only_error() -> None:
    client = SimpleNamespace(list_topics=lambda **_: (_ for _ in ()).throw(KafkaException("x")))
    with pytest.raises(admin.BrokerUnavailable, match=r"within .* s \(x\)\. Start"):
        admin.cluster_metadata(client, "b:9092")


@pytest.mark.parametrize(
    ("exc", "why"),
    [
        (KafkaException(KafkaError(KafkaError.POLICY_VIOLATION, "no")), "no"),
        (KafkaException("text"), "text"),
        (KafkaException(), ""),
    ],
)
def test_a_topic_that_cannot_be_created_is_reported_failed(
    monkeypatch: pytest.MonkeyPatch, topics: Topics, exc: KafkaException, why: str
) -> None:
    monkeypatch.setattr(admin, "admin_client", lambda _bootstrap: Admin(exc))
    report = admin.apply_topics(topics, "b:9092")
    assert {t.status for t in report.topics} == {"failed"}
    assert {tuple(t.problems) for t in report.topics} == {(f"cannot create: {why}",)}


def test_an_unreadable_config_is_reported_failed(topics: Topics) -> None:
    spec = topics.wallet_events
    [report] = admin._check_existing(Admin(KafkaException("text")), None, [spec])  # type: ignore[arg-type]
    assert (report.status, report.problems) == ("failed", ["cannot read its config: text"])


def test_a_changelog_that_cannot_be_created_is_an_error_unless_it_exists(
    monkeypatch: pytest.MonkeyPatch, topics: Topics
) -> None:
    exists = KafkaException(KafkaError(KafkaError.TOPIC_ALREADY_EXISTS))
    monkeypatch.setattr(admin, "admin_client", lambda _bootstrap: Admin(exists))
    admin.ensure_changelog(topics, "b:9092", "t-changelog")  # someone else made it
    monkeypatch.setattr(admin, "admin_client", lambda _bootstrap: Admin(KafkaException("x")))
    with pytest.raises(StreamError, match=r"cannot create changelog topic t-changelog: x$"):
        admin.ensure_changelog(topics, "b:9092", "t-changelog")


def test_an_acl_refused_without_a_kafka_error_is_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(acls, "admin_client", lambda _bootstrap: Admin(KafkaException("text")))
    report = acls.apply_acls([acls.Grant("User:x", "topic", "t", "READ")], "b:9092")
    assert not report.ok
    assert [f.rpartition(": ")[2] for f in report.failed] == ["text"]


class Producer:
    """A producer of a cluster that has every topic, refusing every record with ``exc``."""

    exc: BaseException = KafkaException()

    def __init__(self, config: dict[str, Any]) -> None:
        pass

    def list_topics(self, topic: str | None = None, timeout: float = 0) -> Any:
        return SimpleNamespace(brokers={1: "b"}, topics={topic: SimpleNamespace(error=None)})

    def produce(self, *_: Any, **__: Any) -> None:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "why"),
    [
        (KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "too large")), "too large"),
        (KafkaException("text"), "text"),
    ],
)
def test_a_record_refused_before_it_left_is_counted(
    monkeypatch: pytest.MonkeyPatch, topics: Topics, exc: KafkaException, why: str
) -> None:
    monkeypatch.setattr(Producer, "exc", exc)
    monkeypatch.setattr(publisher, "Producer", Producer)
    result = publisher.PublishResult("-", topics.cdr_raw.name, "b:9092")
    publisher._Sender("b:9092", topics.cdr_raw, result).send(b"k", b"v")
    assert (result.failed, result.errors) == (1, {why: 1})


def test_a_revision_refused_without_a_kafka_error_is_a_stream_error(
    monkeypatch: pytest.MonkeyPatch, topics: Topics
) -> None:
    monkeypatch.setattr(revisions, "Producer", Producer)  # refuses with KafkaException()
    revision = revisions.CatalogRevision(1, "0" * 64, "c.yaml", "plans: []", "2024-01-01T00:00Z")
    with pytest.raises(StreamError, match=r"cannot publish to \S+: $"):
        revisions._produce("b:9092", topics, revision)


class Consumer:
    """A consumer whose commits and metadata requests fail with ``exc``."""

    exc: BaseException = KafkaException()

    def __init__(self, config: dict[str, Any]) -> None:
        pass

    def commit(self, **_: Any) -> None:
        raise self.exc

    def list_topics(self, *_: Any, **__: Any) -> None:
        raise self.exc


@pytest.fixture
def a_sink(monkeypatch: pytest.MonkeyPatch, topics: Topics, tmp_path: Path) -> Iterator[sink.Sink]:
    monkeypatch.setattr(sink, "Consumer", Consumer)
    store = open_store(f"sqlite:///{tmp_path / 'events.db'}", chain_key=None)
    yield sink.Sink(sink.SinkSettings("b:9092"), topics, store)
    store.close()


def test_a_commit_refused_without_a_kafka_error_stops_the_sink(
    monkeypatch: pytest.MonkeyPatch, a_sink: sink.Sink
) -> None:
    a_sink._pending = {(a_sink.topic, 0): 5}
    monkeypatch.setattr(Consumer, "exc", KafkaException("text"))
    with pytest.raises(StreamError, match=r"consuming \S+: text$"):
        a_sink._commit_pending()
    # A Kafka error goes where it went: a rebalance drops the partitions' offsets.
    rebalance = KafkaException(KafkaError(KafkaError.REBALANCE_IN_PROGRESS))
    monkeypatch.setattr(Consumer, "exc", rebalance)
    a_sink._commit_pending()
    assert a_sink._pending == {} and a_sink._in_flight is None


def test_a_probe_failing_without_a_kafka_error_is_no_outage_news(
    monkeypatch: pytest.MonkeyPatch, a_sink: sink.Sink
) -> None:
    a_sink.kafka.failed("transport", "gone")
    monkeypatch.setattr(Consumer, "exc", KafkaException())
    a_sink._probe_kafka()
    assert a_sink.kafka.active  # neither ended nor counted again
