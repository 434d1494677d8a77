"""The Kafka topics, read from ``topics.yaml``: names by role, so no code spells a topic name.

``load_topics()`` reads the file named by env ``RATING_TOPICS``, else the ``topics.yaml`` at
the root of the checkout, checks it and returns `Topics`, with one `TopicSpec` per role::

    topics = load_topics()
    producer.produce(topics.cdr_raw.name, key=iccid, value=line)

Every mistake in the file is reported at once, each with the file, its line and its path
(``topics.yaml:31: topics[2].partitions: must be a positive integer``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, get_args

import msgspec

from ..catalog.errors import CatalogError
from ..catalog.yaml_source import read_yaml

ENV_PATH = "RATING_TOPICS"
ENV_REPLICATION = "RATING_TOPICS_REPLICATION"

# engine/stream/topics.py -> the checkout's root. An editable install (the supported way to
# install the engine) keeps the package inside the checkout, so this finds the file from any
# working directory.
REPO_TOPICS = Path(__file__).resolve().parents[2] / "topics.yaml"

Role = Literal[
    "cdr_raw",
    "cdr_by_wallet",
    "cdr_rejected",
    "wallet_commands",
    "wallet_events",
    "network_actions",
    "wallet_snapshots",
    "wallet_directory",
    "catalog_revisions",
]
Key = Literal["iccid", "wallet_id", "partition", "entry", "revision"]
Cleanup = Literal["delete", "compact"]

ROLES: tuple[Role, ...] = get_args(Role)

# What the code keys each topic by. The file's ``key`` documents it for operators; checking
# it against this table means the documentation cannot drift from what the code does.
ROLE_KEYS: dict[str, Key] = {
    "cdr_raw": "iccid",
    "cdr_by_wallet": "wallet_id",
    "cdr_rejected": "iccid",
    "wallet_commands": "wallet_id",
    "wallet_events": "wallet_id",
    "network_actions": "wallet_id",
    "wallet_snapshots": "partition",
    "wallet_directory": "entry",
    "catalog_revisions": "revision",
}

# Kafka's own rule for topic names (kafka.common.internals.Topic).
_LEGAL_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")

_FIELDS = "role name key key_optional partitions retention_ms cleanup description"
_COMPACTION = {
    "segment_ms": "segment.ms",
    "min_cleanable_dirty_ratio": "min.cleanable.dirty.ratio",
    "delete_retention_ms": "delete.retention.ms",
}
"""Optional topic settings of how a compacted topic is cleaned, and their Kafka names."""
_TOPIC_FIELDS = (*_FIELDS.split(), "max_message_bytes", *_COMPACTION)


class StreamError(Exception):
    """Something the streaming commands cannot do; the message says what and how to fix it."""


class TopicsError(StreamError):
    """A topics file that cannot be used; ``issues`` holds every mistake, in file order."""

    def __init__(self, issues: list[str]) -> None:
        self.issues = issues
        super().__init__("\n".join(issues))


class TopicSpec(msgspec.Struct, frozen=True):
    """One topic as the file describes it. ``retention_ms`` is ``None`` for ``forever``."""

    role: Role
    name: str
    key: Key
    partitions: int
    replication: int
    retention_ms: int | None
    cleanup: Cleanup
    description: str
    key_optional: bool = False
    max_message_bytes: int | None = None
    """Largest record batch the broker takes (Kafka's ``max.message.bytes``); ``None`` keeps
    the broker's default of about 1 MiB."""
    segment_ms: int | None = None
    """Kafka's ``segment.ms``: the active segment is rolled after this long. Compaction
    only cleans closed segments, so a compacted topic written steadily needs it well below
    the broker's default of 7 days. ``None``: the broker's default."""
    min_cleanable_dirty_ratio: float | None = None
    """Kafka's ``min.cleanable.dirty.ratio``: compaction runs once this share of the log is
    superseded records (the broker's default is 0.5)."""
    delete_retention_ms: int | None = None
    """Kafka's ``delete.retention.ms``: how long a tombstone is kept once compacted."""

    def kafka_config(self) -> dict[str, str]:
        """The topic-level Kafka settings `rating-engine topics apply` sets and checks."""
        config = {
            "cleanup.policy": self.cleanup,
            "retention.ms": str(-1 if self.retention_ms is None else self.retention_ms),
        }
        if self.max_message_bytes is not None:
            config["max.message.bytes"] = str(self.max_message_bytes)
        for field, name in _COMPACTION.items():
            value = getattr(self, field)
            if value is not None:
                config[name] = str(value)
        return config


class Changelogs(msgspec.Struct, frozen=True):
    """The changelog topics Faust creates for its tables: documented, not created by us."""

    pattern: str
    cleanup: Cleanup
    description: str

    def name(self, app_id: str, table: str) -> str:
        return self.pattern.format(app_id=app_id, table=table)


class Topics(msgspec.Struct, frozen=True):
    """Every topic, one attribute per role, plus where they were read from."""

    source: str
    replication: int
    cdr_raw: TopicSpec
    cdr_by_wallet: TopicSpec
    cdr_rejected: TopicSpec
    wallet_commands: TopicSpec
    wallet_events: TopicSpec
    network_actions: TopicSpec
    wallet_snapshots: TopicSpec
    """Each wallet partition's snapshot (a record per wallet, its ids in chunks, and a
    manifest), on that partition number, written in the partition's transactions
    (fencing.py)."""
    wallet_directory: TopicSpec
    """The SIM-route table and the wallets opened by command, read by every worker."""
    catalog_revisions: TopicSpec
    changelogs: Changelogs

    @property
    def all(self) -> tuple[TopicSpec, ...]:
        """Every topic, in role order (the order of ``ROLES``)."""
        return tuple(self.by_role(role) for role in ROLES)

    def by_role(self, role: Role) -> TopicSpec:
        spec: TopicSpec = getattr(self, role)
        return spec


def topics_path(environ: Mapping[str, str] | None = None) -> Path:
    """Env ``RATING_TOPICS`` if set, else the checkout's ``topics.yaml``."""
    env = os.environ if environ is None else environ
    value = env.get(ENV_PATH, "").strip()
    return Path(value) if value else REPO_TOPICS


def load_topics(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Topics:
    """Read and check a topics file (default: `topics_path`); raises `TopicsError`."""
    env = os.environ if environ is None else environ
    file = Path(path) if path is not None else topics_path(env)
    if path is None and not file.is_file() and not env.get(ENV_PATH, "").strip():
        raise TopicsError(
            [
                f"{file}: not found; the engine looks for topics.yaml at the root of its "
                f"checkout. Set {ENV_PATH} to the topics file to use."
            ]
        )
    try:
        source = read_yaml(file)
    except CatalogError as exc:  # The YAML reader is shared with the catalog.
        raise TopicsError([str(issue) for issue in exc.issues]) from None
    from .topics_check import TopicsChecker  # it builds this module's types

    return TopicsChecker(source, env).run()
