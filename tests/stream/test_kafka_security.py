"""Kafka over TLS with SASL/SCRAM and ACLs, on a local broker that speaks nothing else: a
throwaway CA, SCRAM users made by Kafka's own tools, the standard authorizer. Plain or
unauthenticated clients get nothing; a principal without write on ``wallet.commands``
cannot forge a charge or a top-up; a whole worker + sink run works with each role's own
login and only the ACLs ``topics apply --acls`` grants."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from support.kafka_secured import SecuredLocalJarBroker

from engine.cli import main
from engine.codec import encode
from engine.domain.commands import ApplyCharge
from engine.store import open_store
from engine.stream.acls import DEFAULT_PRINCIPALS, acl_set, principals
from engine.stream.kafka_security import KafkaSecurity, client_config, loopback_only
from engine.stream.topics import StreamError, load_topics

from .harness import Stack, events_by_wallet, offline_events_by_wallet, private_topics
from .test_worker import TOP_UPS, _dataset, _offline

pytestmark = pytest.mark.chaos


@pytest.fixture(scope="module")
def broker() -> Iterator[tuple[SecuredLocalJarBroker, str]]:
    secured = SecuredLocalJarBroker()
    try:
        yield secured, secured.start()
    finally:
        secured.stop()


def _read(
    bootstrap: str, security: KafkaSecurity, topic: str, until: int, timeout: float = 90.0
) -> list[bytes]:
    consumer = Consumer(
        {
            **client_config(bootstrap, security),
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    consumer.subscribe([topic])
    out: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < until and time.monotonic() < deadline:
            out += [m.value() for m in consumer.consume(1000, 0.5) if m.error() is None]
    finally:
        consumer.close()
    return out


def _count(bootstrap: str, security: KafkaSecurity, topic: str) -> int:
    """Records in ``topic`` (high watermarks summed; every topic here starts at offset 0)."""
    consumer = Consumer({**client_config(bootstrap, security), "group.id": "count"})
    try:
        meta = consumer.list_topics(topic, timeout=30).topics[topic]
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in meta.partitions
        )
    finally:
        consumer.close()


def test_the_security_settings_come_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    env = {
        "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "KAFKA_SASL_USERNAME": "rating-worker",
        "KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "pw"),
    }
    security = KafkaSecurity.from_env(env)
    assert security.confluent() == {
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "rating-worker",
        "sasl.password": "s3cret",
    }
    assert "s3cret" not in repr(security)
    assert KafkaSecurity.from_env({}).confluent() == {"security.protocol": "plaintext"}
    for bad, message in [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "expected one of"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs KAFKA_SASL_USERNAME"),
        ({**env, "KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM"),
        ({**env, "KAFKA_SSL_CA_FILE": str(tmp_path / "none.pem")}, "no such file"),
    ]:
        with pytest.raises(StreamError, match=message):
            KafkaSecurity.from_env(bad)
    assert principals(["worker=User:w1"])["worker"] == "User:w1"
    with pytest.raises(StreamError, match="ROLE=User:NAME"):
        principals(["wizard=User:x"])


def test_plaintext_over_a_network_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    assert loopback_only("127.0.0.1:9092,localhost:9093,[::1]:9094")
    assert not loopback_only("127.0.0.1:9092,kafka:9092")
    with caplog.at_level("WARNING"):
        client_config("127.0.0.1:19092", KafkaSecurity())
        assert caplog.records == []
        client_config("kafka.example:9092", KafkaSecurity())
        client_config("kafka.example:9092", KafkaSecurity())  # once per process
        client_config("kafka.example:9093", KafkaSecurity(protocol="SSL"))
    assert [r.getMessage().split(" without")[0] for r in caplog.records] == [
        "Kafka at kafka.example:9092"
    ]


def test_without_tls_and_a_valid_login_the_broker_gives_nothing(
    broker: tuple[SecuredLocalJarBroker, str],
) -> None:
    secured, bootstrap = broker
    good = secured.security("rating-publisher")
    wrong = msgspec.structs.replace(good, password="not-the-password")
    no_tls = msgspec.structs.replace(good, protocol="SASL_PLAINTEXT")
    for security in (KafkaSecurity(), wrong, no_tls):
        client = Producer({**client_config(bootstrap, security), "log_level": 0})
        with pytest.raises(KafkaException):
            client.list_topics(timeout=4)
    assert Producer(client_config(bootstrap, good)).list_topics(timeout=30).brokers


def test_a_worker_run_over_sasl_ssl_with_acls_and_no_forged_charge(
    broker: tuple[SecuredLocalJarBroker, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secured, bootstrap = broker
    admin = secured.security("admin")
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    for key, value in secured.env("admin", secrets_dir / "admin").items():
        monkeypatch.setenv(key, value)  # the in-process admin steps (topics) log in as admin
    stack = Stack(bootstrap, tmp_path)
    app_id = stack.env["RATING_APP_ID"]

    def as_role(role: str) -> dict[str, str]:
        return {**stack.env, **secured.env(role, secrets_dir / role)}

    def cli(role: str, *args: str) -> tuple[int, str]:
        stack.env, saved = as_role(role), stack.env
        try:
            done = stack.cli(*args, check=False)
        finally:
            stack.env = saved
        return done.returncode, done.stdout + done.stderr

    # The ACLs, applied by the admin.
    code, out = cli("admin", "topics", "apply", "--acls", "--app-id", app_id)
    assert code == 0, out
    grants = acl_set(stack.topics, DEFAULT_PRINCIPALS, app_id)
    assert f"{len(grants)} ACLs applied" in out

    cdrs, commands = _dataset(tmp_path, 1500, seed=7)
    offline_events, _ = _offline(tmp_path, cdrs, commands)
    expected = offline_events_by_wallet(offline_events)
    total = sum(len(v) for v in expected.values())

    # A publisher's login (or any login without an ACL) cannot forge a command.
    for role in ("rating-publisher", "intruder"):
        code, out = cli(role, "command", "--input", str(commands))
        assert code != 0, out
        assert "authoriz" in out.lower(), out
        assert "Traceback" not in out
        assert secured.passwords[role] not in out
    # A debit forged straight onto wallet.commands with the publisher's login, and a CDR
    # with a login that has no ACL at all: the broker refuses both.
    charge = ApplyCharge(
        command_id="forged-1",
        wallet_id="globex",
        at=datetime(2026, 9, 1, tzinfo=UTC),
        source_wallet="acme",
        cdr_id="cdr-forged",
        amount=10**12,
    )
    failures: list[str] = []
    for role, topic, value in (
        ("rating-publisher", stack.topics.wallet_commands.name, encode(charge)),
        ("intruder", stack.topics.cdr_raw.name, b"{}"),
    ):
        producer = Producer({**client_config(bootstrap, secured.security(role)), "log_level": 0})
        producer.produce(topic, value, b"k", on_delivery=lambda e, m: failures.append(str(e)))
        producer.flush(30)
    assert len(failures) == 2
    assert all("AUTHORIZATION_FAILED" in f.upper() for f in failures), failures
    assert _count(bootstrap, admin, stack.topics.wallet_commands.name) == 0
    assert _count(bootstrap, admin, stack.topics.cdr_raw.name) == 0

    # The whole run, each process with its own login.
    stack.env = as_role("rating-worker")
    stack.start_worker()
    try:
        code, out = cli("rating-operator", "command", "--input", str(commands))
        assert code == 0, out
        _read(bootstrap, admin, stack.topics.wallet_events.name, until=len(TOP_UPS))
        code, out = cli("rating-publisher", "publish", "--input", str(cdrs), "--no-progress")
        assert code == 0, out
        decisions = _read(bootstrap, admin, stack.topics.wallet_events.name, until=10**9, timeout=5)
        deadline = time.monotonic() + 180
        while sum(map(len, events_by_wallet(decisions).values())) < total:
            assert time.monotonic() < deadline, stack.logs()[-3000:]
            time.sleep(1.0)
            decisions = _read(bootstrap, admin, stack.topics.wallet_events.name, 10**9, 5)
    finally:
        stack.stop_worker()
    streamed = events_by_wallet(decisions)
    for wallet in expected:
        assert streamed[wallet] == expected[wallet], f"events of {wallet} differ"
    assert _count(bootstrap, admin, stack.topics.wallet_commands.name) >= len(TOP_UPS)

    # The sink reads wallet.events with its own login, into the store.
    url = f"sqlite:///{tmp_path / 'events.db'}"
    code, out = cli("rating-sink", "sink", "--store", url, "--idle-exit", "3")
    assert code == 0, out
    ids = {e["id"] for d in decisions for e in msgspec.json.decode(d)["events"]}
    with closing(open_store(url)) as store:
        assert {e.event_id for batch in store.read_all() for e in batch} == ids
        assert store.verify() == []
    # A sink may not write: the sink's login cannot put a command on wallet.commands.
    code, out = cli("rating-sink", "command", "--input", str(commands))
    assert code != 0 and "authoriz" in out.lower()


def test_topics_apply_acls_refuses_a_bad_principal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RATING_TOPICS", str(private_topics(tmp_path)))
    load_topics()
    code = main(["topics", "apply", "--bootstrap", "127.0.0.1:1", "--acls", "--principal", "x"])
    assert code == 1
    assert "ROLE=User:NAME" in capsys.readouterr().err


def test_catalog_revisions_are_read_by_worker_and_sink_and_written_by_the_operator() -> None:
    topics = load_topics()
    name = topics.catalog_revisions.name
    grants = acl_set(topics, DEFAULT_PRINCIPALS)
    on_topic = {(g.principal, g.operation) for g in grants if g.name == name}
    for role in ("worker", "sink", "operator"):
        assert (DEFAULT_PRINCIPALS[role], "READ") in on_topic
    # The operator publishes; a worker writes revision 1 when none was published yet.
    writers = {p for p, op in on_topic if op == "WRITE"}
    assert writers == {DEFAULT_PRINCIPALS["operator"], DEFAULT_PRINCIPALS["worker"]}
    assert not any(p == DEFAULT_PRINCIPALS["publisher"] for p, _ in on_topic)
