"""topics.yaml (loading, checking) and ``rating-engine topics list|apply`` against a broker."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

import engine
from engine import cli
from engine.catalog.yaml_source import read_yaml
from engine.local import free_ports
from engine.stream import admin
from engine.stream.topics import (
    REPO_TOPICS,
    ROLES,
    Topics,
    TopicsError,
    load_topics,
    topics_path,
)
from engine.stream.topics_check import TopicsChecker

ENGINE = Path(engine.__file__).resolve().parent


def _document() -> dict[str, object]:
    data = yaml.safe_load(REPO_TOPICS.read_text())
    assert isinstance(data, dict)
    return data


def _write(tmp_path: Path, data: dict[str, object], name: str = "topics.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _errors(path: Path) -> str:
    with pytest.raises(TopicsError) as caught:
        load_topics(path)
    return str(caught.value)


# ---- the file ----------------------------------------------------------------------------


def test_repo_topics_file_has_every_role_with_its_key() -> None:
    topics = load_topics(REPO_TOPICS, environ={})
    assert [spec.role for spec in topics.all] == list(ROLES)
    assert topics.cdr_raw.name == "cdr.raw"
    assert (topics.cdr_raw.key, topics.cdr_by_wallet.key) == ("iccid", "wallet_id")
    assert topics.cdr_rejected.key_optional
    wallet = [topics.cdr_by_wallet, topics.wallet_commands, topics.wallet_events]
    assert {spec.partitions for spec in [*wallet, topics.network_actions]} == {8}
    assert topics.cdr_raw.partitions == 8
    assert topics.replication == 1
    assert topics.wallet_events.kafka_config() == {
        "cleanup.policy": "delete",
        "retention.ms": "-1",
        "max.message.bytes": "16777216",
    }
    assert topics.changelogs.cleanup == "compact"
    assert topics.changelogs.name("rating", "wallets") == "rating-wallets-changelog"


def test_the_checker_collects_every_issue_before_giving_up(tmp_path: Path) -> None:
    text = REPO_TOPICS.read_text().replace(
        "min_cleanable_dirty_ratio: 0.1", "min_cleanable_dirty_ratio: 5"
    )
    text = text.replace("segment_ms: 3600000", "segment_ms: -1")
    path = tmp_path / "topics.yaml"
    path.write_text(text)
    with pytest.raises(TopicsError) as caught:
        TopicsChecker(read_yaml(path), {}).run()
    issues = caught.value.issues
    assert len(issues) == 2, issues
    assert "min_cleanable_dirty_ratio: must be a number in (0, 1], got 5" in issues[1]
    assert ".segment_ms" in issues[0]


def test_path_comes_from_env_else_the_checkout(tmp_path: Path) -> None:
    assert topics_path({}) == REPO_TOPICS
    assert REPO_TOPICS.parent == ENGINE.parent
    other = _write(tmp_path, _document(), "mine.yaml")
    assert topics_path({"RATING_TOPICS": str(other)}) == other
    assert load_topics(environ={"RATING_TOPICS": str(other)}).source == str(other)


def test_replication_is_overridden_by_env(tmp_path: Path) -> None:
    topics = load_topics(REPO_TOPICS, environ={"RATING_TOPICS_REPLICATION": "3"})
    assert topics.replication == 3
    assert {spec.replication for spec in topics.all} == {3}
    with pytest.raises(TopicsError, match="RATING_TOPICS_REPLICATION='three'"):
        load_topics(REPO_TOPICS, environ={"RATING_TOPICS_REPLICATION": "three"})


def test_bad_partitions_names_the_file_line_and_path(tmp_path: Path) -> None:
    data = _document()
    data["topics"][2]["partitions"] = 0  # type: ignore[index]
    path = _write(tmp_path, data)
    message = _errors(path)
    assert re.search(
        rf"^{re.escape(str(path))}:\d+: topics\[2\]\.partitions: must be a positive integer",
        message,
    ), message


def test_decision_topics_take_large_records_and_a_bad_limit_is_reported(
    tmp_path: Path,
) -> None:
    topics = load_topics(REPO_TOPICS, environ={})
    # A monthly tick charges every SIM of a wallet in one decision record.
    assert topics.wallet_events.kafka_config()["max.message.bytes"] == "16777216"
    assert "max.message.bytes" not in topics.cdr_raw.kafka_config()
    data = _document()
    data["topics"][4]["max_message_bytes"] = "lots"  # type: ignore[index]
    message = _errors(_write(tmp_path, data))
    assert "topics[4].max_message_bytes: must be a positive integer, got 'lots'" in message


def test_the_snapshot_topic_rolls_segments_so_compaction_runs_and_bad_settings_are_reported(
    tmp_path: Path,
) -> None:
    topics = load_topics(REPO_TOPICS, environ={})
    config = topics.wallet_snapshots.kafka_config()
    assert config["cleanup.policy"] == "compact"
    assert int(config["segment.ms"]) <= 3_600_000  # not the broker's 7 days
    assert 0 < float(config["min.cleanable.dirty.ratio"]) < 0.5
    assert "delete.retention.ms" in config
    assert "segment.ms" not in topics.wallet_events.kafka_config()
    data = _document()
    data["topics"][4]["segment_ms"] = 0  # type: ignore[index]
    data["topics"][4]["min_cleanable_dirty_ratio"] = 2  # type: ignore[index]
    message = _errors(_write(tmp_path, data))
    assert "topics[4].segment_ms: must be a positive integer, got 0" in message
    assert "topics[4].min_cleanable_dirty_ratio: must be a number in (0, 1], got 2" in message


def test_wallet_topics_must_share_one_partition_count(tmp_path: Path) -> None:
    data = _document()
    data["topics"][4]["partitions"] = 12  # type: ignore[index]  # wallet.events
    message = _errors(_write(tmp_path, data))
    assert "topics[4].partitions: the topics keyed by wallet_id are co-partitioned" in message
    assert "wallet.events 12" in message


def test_every_mistake_is_reported_at_once(tmp_path: Path) -> None:
    data = _document()
    topics = data["topics"]
    assert isinstance(topics, list)
    topics[0]["retention_ms"] = "a week"
    topics[1]["cleanup"] = "compcat"
    topics[1]["colour"] = "blue"
    topics[3]["name"] = topics[0]["name"]
    topics[5]["key"] = "iccid"
    del topics[2]  # cdr_rejected
    message = _errors(_write(tmp_path, data))
    expected = [
        "topics[0].retention_ms: must be a positive number of milliseconds or forever",
        "topics[1].cleanup: must be one of delete, compact, got 'compcat'",
        "topics[1].colour: unknown field",
        "topics[2].name: cdr.raw is already the name of topics[0]",
        "topics[4].key: must be wallet_id",
        "topics: missing the topic for role cdr_rejected",
    ]
    for part in expected:
        assert part in message, (part, message)


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    assert "cannot read the file" in _errors(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("topics: [\n")
    assert "invalid YAML" in _errors(broken)


def test_no_topic_name_is_written_as_a_string_literal() -> None:
    """The contract of DESIGN.md: names come from topics.yaml, never from code."""
    names = [spec.name for spec in load_topics(REPO_TOPICS, environ={}).all]
    pattern = re.compile("|".join(rf"""["']{re.escape(name)}["']""" for name in names))
    offenders = [
        f"{path.relative_to(ENGINE.parent)}:{number}"
        for path in ENGINE.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


# ---- the CLI without a broker --------------------------------------------------------------


def test_topics_list(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATING_TOPICS", str(REPO_TOPICS))
    assert cli.main(["topics", "list"]) == 0
    out = capsys.readouterr().out
    assert "wallet.events" in out and "retention forever" in out
    assert cli.main(["topics", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in listed["topics"]][:2] == ["cdr.raw", "cdr.by-wallet"]


def test_a_bad_topics_file_is_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _document()
    data["topics"][2]["partitions"] = -1  # type: ignore[index]
    monkeypatch.setenv("RATING_TOPICS", str(_write(tmp_path, data)))
    assert cli.main(["topics", "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rating-engine: ")
    assert "topics[2].partitions: must be a positive integer" in err


def test_unreachable_broker_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RATING_TOPICS", str(REPO_TOPICS))
    monkeypatch.setattr(admin, "CONNECT_TIMEOUT", 1.0)
    (port,) = free_ports(1)  # Nothing listens there.
    started = time.monotonic()
    assert cli.main(["topics", "apply", "--bootstrap", f"127.0.0.1:{port}"]) == 1
    assert time.monotonic() - started < 30
    err = capsys.readouterr().err
    assert f"no Kafka broker answered at 127.0.0.1:{port}" in err
    assert "Traceback" not in err


def test_a_client_librdkafka_will_not_create_is_its_reason_not_a_kafka_error_repr(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    (tmp_path / "cdrs.jsonl").write_text("{}\n")
    monkeypatch.setenv("RATING_TOPICS", str(REPO_TOPICS))
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "ssl")
    monkeypatch.setenv("KAFKA_SSL_CA_FILE", str(tmp_path / "ca.pem"))
    (port,) = free_ports(1)
    bootstrap = f"127.0.0.1:{port}"
    publish = ["publish", "--input", str(tmp_path / "cdrs.jsonl"), "--bootstrap", bootstrap]
    for args, what in [
        (["topics", "apply", "--bootstrap", bootstrap], "cannot use bootstrap servers"),
        (publish, "cannot create a producer for"),
    ]:
        assert cli.main(args) != 0
        err = capsys.readouterr().err
        assert f"{what} '{bootstrap}': " in err
        assert "ssl.ca.location failed" in err
        assert "KafkaError{" not in err and "Traceback" not in err


# ---- topics apply against a real broker ----------------------------------------------------


@pytest.fixture
def unique_topics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str
) -> Iterator[Topics]:
    """topics.yaml with names unique to this test (RATING_TOPICS points at it); the topics
    are deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    data = _document()
    for item in data["topics"]:  # type: ignore[attr-defined]
        item["name"] = prefix + item["name"]
    path = _write(tmp_path, data)
    monkeypatch.setenv("RATING_TOPICS", str(path))
    monkeypatch.delenv("RATING_TOPICS_REPLICATION", raising=False)
    topics = load_topics(path)
    yield topics
    client = AdminClient({"bootstrap.servers": kafka_bootstrap})
    present = set(client.list_topics(timeout=10).topics)
    doomed = [spec.name for spec in topics.all if spec.name in present]
    if doomed:
        for future in client.delete_topics(doomed, operation_timeout=30).values():
            future.result(timeout=30)


def _apply(bootstrap: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    code = cli.main(["topics", "apply", "--bootstrap", bootstrap, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert isinstance(report, dict)
    return code, report


def test_apply_creates_every_topic_then_changes_nothing(
    kafka_bootstrap: str, unique_topics: Topics, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = _apply(kafka_bootstrap, capsys)
    assert code == 0
    assert report["ok"] and report["changed"]
    assert [t["status"] for t in report["topics"]] == ["created"] * 9  # type: ignore[attr-defined]

    client = AdminClient({"bootstrap.servers": kafka_bootstrap})
    metadata = client.list_topics(timeout=10)
    # Served at once: a `publish` right after `topics apply` finds every partition led.
    for spec in unique_topics.all:
        assert all(p.leader >= 0 for p in metadata.topics[spec.name].partitions.values())
    resources = [ConfigResource(ResourceType.TOPIC, spec.name) for spec in unique_topics.all]
    configs = client.describe_configs(resources)
    for spec, resource in zip(unique_topics.all, resources, strict=True):
        assert len(metadata.topics[spec.name].partitions) == spec.partitions
        entries = configs[resource].result(timeout=30)
        assert entries["cleanup.policy"].value == spec.cleanup
        assert entries["retention.ms"].value == spec.kafka_config()["retention.ms"]
        if spec.max_message_bytes is not None:
            assert entries["max.message.bytes"].value == str(spec.max_message_bytes)

    code, report = _apply(kafka_bootstrap, capsys)
    assert code == 0
    assert report["ok"] and not report["changed"]
    assert {t["status"] for t in report["topics"]} == {"ok"}  # type: ignore[attr-defined]
    assert all(not t["warnings"] for t in report["topics"])  # type: ignore[attr-defined]

    assert cli.main(["topics", "apply", "--bootstrap", kafka_bootstrap]) == 0
    assert "no changes" in capsys.readouterr().out


def test_apply_reports_a_topic_with_the_wrong_partition_count(
    kafka_bootstrap: str, unique_topics: Topics, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = unique_topics.wallet_events
    client = AdminClient({"bootstrap.servers": kafka_bootstrap})
    client.create_topics([NewTopic(wrong.name, num_partitions=3, replication_factor=1)])[
        wrong.name
    ].result(timeout=30)

    assert cli.main(["topics", "apply", "--bootstrap", kafka_bootstrap]) == 1
    captured = capsys.readouterr()
    assert f"{wrong.name}" in captured.out
    assert "has 3 partitions, topics.yaml says 8" in captured.out
    # Created with the broker's defaults, so its retention differs too: a warning only.
    assert "warning: has retention.ms=" in captured.out
    # ... and its record size limit is too small for the largest decisions: a problem.
    assert "has max.message.bytes=1048588, topics.yaml says 16777216" in captured.out
    assert "differ from topics.yaml" in captured.err

    code, report = _apply(kafka_bootstrap, capsys)
    assert code == 1 and not report["ok"]
    statuses = {t["name"]: t["status"] for t in report["topics"]}  # type: ignore[attr-defined]
    assert statuses.pop(wrong.name) == "differs"
    assert set(statuses.values()) == {"ok"}  # the others were created by the first run
