"""Catalog revisions on ``catalog.revisions``: every catalog ever published, whole.

A revision is the catalog file's text with its number, its sha256 and when it was published,
one record keyed by the number (as text) on a one-partition compacted topic: compaction
keeps the last record of each number, and numbers are never reused, so every revision
stays. Numbers start at 1. Decisions name the revision they were decided with, so the
source of each revision is what recovery, rebuild and replay need to decide again alike.

This module reads the topic (``read_revisions``, ``latest_revision``), publishes a revision
and waits for the broker's ack (``publish_revision``), and holds the base-revision rule a
worker applies at start (``base_revision``). ``live_catalogs.CatalogRevisions`` is the live
table of catalogs by revision that a worker decides with. Every client is configured by
``client_config``, so the engine's Kafka security settings apply here too.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import msgspec
from confluent_kafka import (
    KafkaError,
    KafkaException,
    Message,
    Producer,
)

from ..catalog import CatalogError, CatalogIssue, load_catalog_text
from ..domain import Catalog
from .acls import CATALOG_GROUP
from .admin import admin_client, cluster_metadata
from .kafka_errors import kafka_text
from .kafka_security import client_config
from .producer import PRODUCER_CONFIG
from .recovery import read_partition
from .topics import StreamError, Topics

log = logging.getLogger(__name__)


ACK_TIMEOUT = 60.0
"""Seconds ``publish_revision`` waits for the broker's acknowledgement."""


class CatalogRevision(msgspec.Struct, frozen=True):
    """One published catalog: the record of ``catalog.revisions`` (msgspec JSON)."""

    revision: Annotated[int, msgspec.Meta(ge=1)]
    digest: str
    """sha256 hex of ``source`` as UTF-8 bytes (the file's bytes as published)."""
    name: str
    """The file name it was published from (no directory): for people and error messages."""
    source: str
    """The YAML text, whole."""
    published_at: str
    """RFC 3339, UTC."""

    @property
    def label(self) -> str:
        """How a catalog issue names this revision, in place of a file."""
        return f"revision {self.revision} ({self.name})"

    def catalog(self) -> Catalog:
        """The revision's catalog, built by the normal loader; ``CatalogError`` names the
        revision and its file name."""
        return load_catalog_text(self.source, self.label)


_decoder = msgspec.json.Decoder(CatalogRevision)


def digest_of(source: bytes) -> str:
    return hashlib.sha256(source).hexdigest()


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def read_source(path: Path) -> tuple[str, str]:
    """``(text, digest)`` of the catalog file at ``path``: the digest of its bytes, and the
    bytes as text (a file that is not UTF-8 is a ``CatalogError``, as the loader says)."""
    try:
        data = path.read_bytes()
        return data.decode("utf-8"), digest_of(data)
    except OSError as exc:
        problem = f"cannot read the file: {exc.strerror or exc}"
        raise CatalogError([CatalogIssue(str(path), "", None, problem)]) from None
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text: {exc.reason}"
        raise CatalogError([CatalogIssue(str(path), "", None, problem)]) from None


def revision_of(path: Path, revision: int, published_at: str | None = None) -> CatalogRevision:
    """The file at ``path`` as revision number ``revision`` (not yet published)."""
    text, digest = read_source(path)
    return CatalogRevision(revision, digest, path.name, text, published_at or now_rfc3339())


def decode_revision(raw: bytes) -> CatalogRevision:
    return _decoder.decode(raw)


def _records(bootstrap: str, topics: Topics) -> list[Message]:
    name = topics.catalog_revisions.name
    check_topic(bootstrap, name)
    return list(read_partition(bootstrap, name, 0, group=CATALOG_GROUP))


def check_topic(bootstrap: str, name: str) -> None:
    """A clear error, at once, when there is no broker or no topic to read."""
    found = cluster_metadata(admin_client(bootstrap), bootstrap, name).topics.get(name)
    if found is None or (
        found.error is not None and found.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    ):
        raise StreamError(
            f"topic {name} does not exist on {bootstrap}: create the topics with "
            "`rating-engine topics apply`"
        )


def read_revisions(bootstrap: str, topics: Topics) -> dict[int, CatalogRevision]:
    """Every published revision by number, the topic read to its end as it is now. A number
    written twice keeps its last record, as compaction will."""
    found: dict[int, CatalogRevision] = {}
    for message in _records(bootstrap, topics):
        value = message.value()
        if value is None:
            continue
        try:
            revision = decode_revision(value)
        except msgspec.MsgspecError as exc:
            where = f"{topics.catalog_revisions.name}@{message.offset()}"
            raise StreamError(f"{where}: not a catalog revision: {exc}") from None
        found[revision.revision] = revision
    return found


def latest_revision(bootstrap: str, topics: Topics) -> int:
    """The highest published revision number; 0 when none was published."""
    return max(read_revisions(bootstrap, topics), default=0)


def publish_revision(bootstrap: str, topics: Topics, revision: CatalogRevision) -> bool:
    """Publish ``revision`` and wait for the broker's ack. Idempotent per number: ``False``
    when that number is already published with the same digest (nothing is sent); a
    ``StreamError`` when it is published with another one (numbers are never reused)."""
    published = read_revisions(bootstrap, topics).get(revision.revision)
    if published is not None:
        if published.digest == revision.digest:
            return False
        raise StreamError(_taken(published, revision))
    _produce(bootstrap, topics, revision)
    # Two publishers that read the same latest number race for the next one: the record
    # read back last is the one every reader keeps, so the loser learns it here.
    kept = read_revisions(bootstrap, topics).get(revision.revision)
    if kept is None or kept.digest != revision.digest:
        raise StreamError(_taken(kept, revision) if kept else "the revision was not read back")
    return True


def _taken(published: CatalogRevision, revision: CatalogRevision) -> str:
    return (
        f"revision {revision.revision} is already published from {published.name} "
        f"(sha256 {published.digest[:12]}) at {published.published_at}, not from "
        f"{revision.name} (sha256 {revision.digest[:12]}): another publish came first; "
        "publish again to make it the next revision"
    )


def _produce(bootstrap: str, topics: Topics, revision: CatalogRevision) -> None:
    spec = topics.catalog_revisions
    limit = spec.max_message_bytes or 1_000_000
    failures: list[str] = []

    def on_delivery(error: KafkaError | None, _msg: Message) -> None:
        if error is not None:
            failures.append(error.str())

    payload = msgspec.json.encode(revision)
    # librdkafka checks a record's size before compression: a catalog of a million SIMs is
    # about 80 MB of JSON and 12 MB once compressed, which is what the topic's limit is for.
    local = min(max(4 * limit, len(payload) + 1_000_000), 1_000_000_000)
    try:
        producer = Producer(
            {**PRODUCER_CONFIG, **client_config(bootstrap), "message.max.bytes": local}
        )
        producer.produce(
            spec.name,
            payload,
            str(revision.revision).encode(),
            on_delivery=on_delivery,
        )
    except KafkaException as exc:
        raise StreamError(f"cannot publish to {spec.name}: {kafka_text(exc)}") from None
    if producer.flush(ACK_TIMEOUT) > 0:
        raise StreamError(f"{spec.name}: no acknowledgement from {bootstrap} in {ACK_TIMEOUT:g} s")
    if failures:
        raise StreamError(f"publishing revision {revision.revision}: {failures[0]}")


def base_revision(bootstrap: str, topics: Topics, path: Path) -> int:
    """The revision a worker started with ``--catalog path`` stands on: when nothing was
    published yet, ``path`` is published as revision 1; otherwise ``path`` must be a
    published revision (the same bytes), else the worker must not start: a ``StreamError``
    says how to publish it."""
    text, digest = read_source(path)
    published = read_revisions(bootstrap, topics)
    if not published:
        first = CatalogRevision(1, digest, path.name, text, now_rfc3339())
        publish_revision(bootstrap, topics, first)
        return 1
    same = [n for n, r in published.items() if r.digest == digest]
    if same:
        return max(same)
    latest = published[max(published)]
    raise StreamError(
        f"{path} is not a published revision (sha256 {digest[:12]}; the latest is "
        f"{latest.label}, sha256 {latest.digest[:12]}); publish it with "
        f"`rating-engine catalog publish {path}`, or start the worker with a published one"
    )
