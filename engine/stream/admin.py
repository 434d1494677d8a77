"""Make the broker's topics match ``topics.yaml``: create what is missing, report what differs.

`apply_topics` never changes an existing topic. Adding partitions would move keys to other
partitions (a wallet would briefly have two owners) and switching a topic between delete
and compact would silently start deleting data, so those differences are errors for a
human to resolve. A differing retention or replication factor is reported as a warning.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any, Literal

import msgspec
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from .kafka_errors import kafka_error, kafka_text
from .kafka_security import client_config
from .topics import StreamError, Topics, TopicSpec

ENV_BOOTSTRAP = "KAFKA_BOOTSTRAP"
LOCAL_BOOTSTRAP = "127.0.0.1:19092"  # The broker of `make kafka-up` (deploy/local/kafka.sh).

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a broker to answer before giving up with `BrokerUnavailable`."""

REQUEST_TIMEOUT = 30.0
"""Seconds an admin request (create, describe) may take once the broker has answered."""

Status = Literal["created", "ok", "differs", "failed"]


class BrokerUnavailable(StreamError):
    """No broker answered at the bootstrap address in time."""


def bootstrap_servers(value: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """``value`` if given, else env ``KAFKA_BOOTSTRAP``, else the local broker's address."""
    env = os.environ if environ is None else environ
    return value or env.get(ENV_BOOTSTRAP, "").strip() or LOCAL_BOOTSTRAP


def admin_client(bootstrap: str) -> AdminClient:
    try:
        return AdminClient(
            {
                **client_config(bootstrap),
                # librdkafka would print a line per failed connection attempt; an unreachable
                # broker is reported once, by `cluster_metadata`.
                "log_level": 0,
            }
        )
    except KafkaException as exc:
        raise StreamError(
            f"cannot use bootstrap servers {bootstrap!r}: {kafka_text(exc)}"
        ) from None


def cluster_metadata(client: Any, bootstrap: str, topic: str | None = None) -> Any:
    """The cluster's metadata (all topics, or just ``topic``), or `BrokerUnavailable`.

    ``client`` is an AdminClient or a Producer: both answer ``list_topics``. Asking first
    turns "no broker there" into one clear error within `CONNECT_TIMEOUT` seconds instead of
    librdkafka retrying quietly until a message times out.
    """
    try:
        metadata = client.list_topics(topic=topic, timeout=CONNECT_TIMEOUT)
    except KafkaException as exc:
        raise BrokerUnavailable(
            f"no Kafka broker answered at {bootstrap} within {CONNECT_TIMEOUT:g} s "
            f"({kafka_text(exc)}). Start the local one with "
            f"`make kafka-up`, or name yours with --bootstrap or {ENV_BOOTSTRAP}."
        ) from None
    if not metadata.brokers:
        raise BrokerUnavailable(f"the cluster at {bootstrap} lists no brokers")
    return metadata


def group_members(bootstrap: str, group: str) -> int:
    """How many consumers are members of ``group`` now (0 for a group nobody runs)."""
    client = admin_client(bootstrap)
    cluster_metadata(client, bootstrap)
    try:
        futures = client.describe_consumer_groups([group], request_timeout=CONNECT_TIMEOUT)
        description = futures[group].result(timeout=CONNECT_TIMEOUT)
    except KafkaException as exc:
        raise StreamError(
            f"cannot describe group {group!r} at {bootstrap}: {kafka_text(exc)}"
        ) from None
    return len(description.members or ())


class TopicReport(msgspec.Struct, frozen=True):
    """What `apply_topics` found or did for one topic."""

    role: str
    name: str
    status: Status
    partitions: int | None = None
    problems: list[str] = []
    """Why ``status`` is ``differs`` or ``failed``: the exit status is non-zero."""
    warnings: list[str] = []
    """Differences that are reported but do not fail the run."""


class ApplyReport(msgspec.Struct, frozen=True):
    bootstrap: str
    source: str
    topics: list[TopicReport]

    @property
    def ok(self) -> bool:
        return all(t.status in ("created", "ok") for t in self.topics)

    @property
    def changed(self) -> bool:
        return any(t.status == "created" for t in self.topics)


def apply_topics(topics: Topics, bootstrap: str) -> ApplyReport:
    """Create the missing topics of ``topics`` and check the existing ones. Idempotent."""
    client = admin_client(bootstrap)
    metadata = cluster_metadata(client, bootstrap)
    existing = [spec for spec in topics.all if spec.name in metadata.topics]
    missing = [spec for spec in topics.all if spec.name not in metadata.topics]
    reports: dict[str, TopicReport] = {}
    raced: list[TopicSpec] = []
    if missing:
        futures = client.create_topics(
            [
                NewTopic(
                    spec.name,
                    num_partitions=spec.partitions,
                    replication_factor=spec.replication,
                    config=spec.kafka_config(),
                )
                for spec in missing
            ],
            operation_timeout=REQUEST_TIMEOUT,
            request_timeout=REQUEST_TIMEOUT,
        )
        for spec in missing:
            try:
                futures[spec.name].result(timeout=REQUEST_TIMEOUT)
            except KafkaException as exc:
                error = kafka_error(exc)
                if error is not None and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    raced.append(spec)  # Someone else created it meanwhile: check theirs.
                    continue
                reports[spec.name] = TopicReport(
                    spec.role, spec.name, "failed", problems=[f"cannot create: {kafka_text(exc)}"]
                )
                continue
            reports[spec.name] = TopicReport(spec.role, spec.name, "created", spec.partitions)
    created = [s for s in missing if s.name in reports and reports[s.name].status == "created"]
    _wait_until_served(client, bootstrap, created)
    if raced:
        metadata = cluster_metadata(client, bootstrap)
    for spec, report in zip(
        existing + raced, _check_existing(client, metadata, existing + raced), strict=True
    ):
        reports[spec.name] = report
    return ApplyReport(bootstrap, topics.source, [reports[spec.name] for spec in topics.all])


def _wait_until_served(client: AdminClient, bootstrap: str, specs: list[TopicSpec]) -> None:
    """Return once the broker serves every partition of the new topics (a created topic can
    take a moment to reach the brokers' metadata), so a `publish` right after `topics apply`
    finds them."""
    deadline = time.monotonic() + REQUEST_TIMEOUT
    while specs:
        metadata = cluster_metadata(client, bootstrap)
        specs = [spec for spec in specs if not _served(metadata.topics.get(spec.name), spec)]
        if not specs:
            return
        if time.monotonic() > deadline:
            names = ", ".join(spec.name for spec in specs)
            raise StreamError(f"created but not served by {bootstrap} after 30 s: {names}")
        time.sleep(0.1)


def _served(topic: Any, spec: TopicSpec) -> bool:
    if topic is None or topic.error is not None or len(topic.partitions) != spec.partitions:
        return False
    return all(p.leader >= 0 for p in topic.partitions.values())


def _check_existing(
    client: AdminClient, metadata: Any, specs: list[TopicSpec]
) -> list[TopicReport]:
    if not specs:
        return []
    resources = [ConfigResource(ResourceType.TOPIC, spec.name) for spec in specs]
    futures = client.describe_configs(resources, request_timeout=REQUEST_TIMEOUT)
    reports = []
    for spec, resource in zip(specs, resources, strict=True):
        try:
            entries = futures[resource].result(timeout=REQUEST_TIMEOUT)
        except KafkaException as exc:
            reports.append(
                TopicReport(
                    spec.role,
                    spec.name,
                    "failed",
                    problems=[f"cannot read its config: {kafka_text(exc)}"],
                )
            )
            continue
        config = {name: entry.value for name, entry in entries.items()}
        reports.append(compare(spec, metadata.topics[spec.name], config))
    return reports


def compare(spec: TopicSpec, topic: Any, config: Mapping[str, str | None]) -> TopicReport:
    """Check one existing topic (its metadata and config) against its spec."""
    problems: list[str] = []
    warnings: list[str] = []
    partitions = len(topic.partitions)
    if partitions != spec.partitions:
        problems.append(
            f"has {partitions} partitions, topics.yaml says {spec.partitions}. Kafka cannot "
            "change this without moving keys to other partitions: delete and recreate the "
            "topic (its data is lost) or change topics.yaml"
        )
    cleanup = config.get("cleanup.policy")
    if cleanup != spec.cleanup:
        problems.append(
            f"has cleanup.policy={cleanup}, topics.yaml says {spec.cleanup}; changing it "
            "would change which records Kafka deletes, so it is left for you to decide"
        )
    want = spec.kafka_config()["retention.ms"]
    have = config.get("retention.ms")
    if have != want:
        warnings.append(f"has retention.ms={have}, topics.yaml says {want}")
    for name in ("segment.ms", "min.cleanable.dirty.ratio", "delete.retention.ms"):
        want_value = spec.kafka_config().get(name)
        have_value = config.get(name)
        if (
            want_value is not None
            and have_value is not None
            and float(have_value) != float(want_value)
        ):
            warnings.append(
                f"has {name}={have_value}, topics.yaml says {want_value}: kafka-configs "
                f"--alter --add-config {name}={want_value}"
            )
    limit = spec.kafka_config().get("max.message.bytes")
    have_limit = config.get("max.message.bytes")
    if limit is not None and have_limit is not None and int(have_limit) < int(limit):
        problems.append(
            f"has max.message.bytes={have_limit}, topics.yaml says {limit}; the worker's "
            "largest decisions would be refused: kafka-configs --alter --add-config "
            f"max.message.bytes={limit}"
        )
    replicas = {len(p.replicas) for p in topic.partitions.values()}
    if replicas and replicas != {spec.replication}:
        have_rf = "/".join(str(r) for r in sorted(replicas))
        warnings.append(f"has replication factor {have_rf}, topics.yaml says {spec.replication}")
    status: Status = "differs" if problems else "ok"
    return TopicReport(spec.role, spec.name, status, partitions, problems, warnings)


def render(report: ApplyReport) -> str:
    """One line per topic, then its problems and warnings, then a verdict."""
    lines = [f"topics from {report.source} on {report.bootstrap}:"]
    width = max(len(t.name) for t in report.topics)
    labels = {
        "created": "created",
        "ok": "exists, matches",
        "differs": "DIFFERS",
        "failed": "FAILED",
    }
    for t in report.topics:
        parts = f"{t.partitions} partitions" if t.partitions is not None else ""
        lines.append(f"  {t.name:<{width}}  {labels[t.status]:<15}  {parts}".rstrip())
        lines.extend(f"      error: {p}" for p in t.problems)
        lines.extend(f"      warning: {w}" for w in t.warnings)
    bad = sum(1 for t in report.topics if t.status in ("differs", "failed"))
    created = sum(1 for t in report.topics if t.status == "created")
    if bad:
        lines.append(f"{bad} topic(s) need attention; {created} created")
    elif created == len(report.topics):
        lines.append(f"{created} topic(s) created")
    elif created:
        lines.append(f"{created} topic(s) created; the others already matched")
    else:
        lines.append("no changes: every topic exists and matches")
    return "\n".join(lines)


def ensure_changelog(topics: Topics, bootstrap: str, name: str) -> None:
    """Create a table's compacted changelog topic, co-partitioned with the wallet topics.

    Faust may not declare topics here (``topic_allow_declare=False`` keeps it from creating
    the input topics with the wrong partition count), so the worker creates the one topic
    it owns before starting. An existing topic with another partition count is an error.
    """
    client = admin_client(bootstrap)
    metadata = cluster_metadata(client, bootstrap)
    partitions = topics.wallet_events.partitions
    found = metadata.topics.get(name)
    if found is not None:
        if len(found.partitions) != partitions:
            raise StreamError(
                f"changelog topic {name} has {len(found.partitions)} partitions, the wallet "
                f"topics have {partitions}: delete it (it is rebuilt from wallet.events)"
            )
        return
    config: dict[str, str] = {"cleanup.policy": topics.changelogs.cleanup}
    future = client.create_topics(
        [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=topics.replication,
                config=config,
            )
        ],
        operation_timeout=REQUEST_TIMEOUT,
        request_timeout=REQUEST_TIMEOUT,
    )[name]
    try:
        future.result(timeout=REQUEST_TIMEOUT)
    except KafkaException as exc:
        error = kafka_error(exc)
        if error is None or error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise StreamError(f"cannot create changelog topic {name}: {kafka_text(exc)}") from None
