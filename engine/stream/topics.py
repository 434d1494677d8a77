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
from ..catalog.yaml_source import Source, read_yaml

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
    return _Checker(source, env).run()


class _Checker:
    """Walks the parsed document, collecting every issue before giving up."""

    def __init__(self, source: Source, environ: Mapping[str, str]) -> None:
        self.source = source
        self.env = environ
        self.issues: list[str] = []

    def issue(self, path: str, message: str) -> None:
        # A value the file does not have (a defaulted field) points at its parent's line.
        line, parent = None, path
        while line is None and parent:
            line = self.source.lines.get(parent)
            parent = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", parent)
        where = self.source.file if line is None else f"{self.source.file}:{line}"
        self.issues.append(f"{where}: {path}: {message}" if path else f"{where}: {message}")

    def run(self) -> Topics:
        for dup_path, _ in self.source.duplicate_keys:
            self.issue(dup_path, "written twice (the second value would silently win)")
        data = self.source.data
        if not isinstance(data, dict):
            self.issue("", "expected a mapping with defaults, topics and changelogs")
            raise TopicsError(self.issues)
        self.unknown(data, "", ("defaults", "topics", "changelogs"))
        replication, default_partitions = self.defaults(data.get("defaults"))
        specs = self.topics(data.get("topics"), replication, default_partitions)
        changelogs = self.changelogs(data.get("changelogs"))
        if self.issues or changelogs is None:
            raise TopicsError(self.issues)
        return Topics(
            source=self.source.file,
            replication=replication,
            changelogs=changelogs,
            **{spec.role: spec for spec in specs},
        )

    def unknown(self, mapping: dict[object, object], path: str, known: tuple[str, ...]) -> None:
        for key in mapping:
            if key not in known:
                where = f"{path}.{key}" if path else str(key)
                self.issue(where, f"unknown field (expected one of: {', '.join(known)})")

    def positive_int(self, value: object, path: str) -> int | None:
        # bool is an int in Python; `partitions: yes` is a mistake, not 1.
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        self.issue(path, f"must be a positive integer, got {value!r}")
        return None

    def text(self, value: object, path: str) -> str | None:
        if isinstance(value, str) and value.strip():
            return value
        self.issue(
            path, "missing" if value is None else f"must be a non-empty string, got {value!r}"
        )
        return None

    def choice(self, value: object, path: str, allowed: tuple[str, ...]) -> str | None:
        if isinstance(value, str) and value in allowed:
            return value
        self.issue(path, f"must be one of {', '.join(allowed)}, got {value!r}")
        return None

    def defaults(self, data: object) -> tuple[int, int]:
        """Replication (env ``RATING_TOPICS_REPLICATION`` wins) and default partitions."""
        replication, partitions = 1, 8
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.issue("defaults", "must be a mapping (replication, partitions)")
            data = {}
        self.unknown(data, "defaults", ("replication", "partitions"))
        if "replication" in data:
            replication = self.positive_int(data["replication"], "defaults.replication") or 1
        if "partitions" in data:
            partitions = self.positive_int(data["partitions"], "defaults.partitions") or 8
        env_value = self.env.get(ENV_REPLICATION, "").strip()
        if env_value:
            if env_value.isdigit() and int(env_value) > 0:
                replication = int(env_value)
            else:
                self.issues.append(
                    f"{ENV_REPLICATION}={env_value!r}: must be a positive integer "
                    f"(it overrides defaults.replication of {self.source.file})"
                )
        return replication, partitions

    def topics(self, data: object, replication: int, default_partitions: int) -> list[TopicSpec]:
        if not isinstance(data, list) or not data:
            self.issue("topics", "must be a non-empty list of topics")
            return []
        specs: list[TopicSpec] = []
        # The first entry that wrote each role and name, valid or not, so a duplicate is
        # reported even when the first one has mistakes of its own.
        first: dict[tuple[str, object], str] = {}
        for index, item in enumerate(data):
            path = f"topics[{index}]"
            spec = self.topic(item, path, replication, default_partitions)
            duplicate = False
            for field in ("role", "name") if isinstance(item, dict) else ():
                value = item.get(field)
                if not isinstance(value, str):
                    continue
                if (field, value) in first:
                    self.issue(
                        f"{path}.{field}",
                        f"{value} is already the {field} of {first[field, value]}",
                    )
                    duplicate = True
                else:
                    first[field, value] = path
            if spec is not None and not duplicate:
                specs.append(spec)
        # Roles written in the file, valid entry or not: a topic with a mistake is reported
        # for that mistake, not as missing too.
        written = {item.get("role") for item in data if isinstance(item, dict)}
        missing = [role for role in ROLES if role not in written]
        if missing:
            self.issue("topics", f"missing the topic for role {', '.join(missing)}")
        self.copartitioned(specs, data)
        return specs

    def topic(
        self, item: object, path: str, replication: int, default_partitions: int
    ) -> TopicSpec | None:
        if not isinstance(item, dict):
            self.issue(path, "must be a mapping (role, name, key, partitions, ...)")
            return None
        self.unknown(item, path, _TOPIC_FIELDS)
        before = len(self.issues)
        for required in ("role", "name", "key", "retention_ms", "cleanup", "description"):
            if required not in item:
                self.issue(path, f"missing required field {required}")
        if len(self.issues) > before:
            return None
        role = self.choice(item["role"], f"{path}.role", ROLES)
        name = self.text(item["name"], f"{path}.name")
        if name is not None and (not _LEGAL_NAME.match(name) or name in (".", "..")):
            self.issue(f"{path}.name", f"{name!r} is not a legal Kafka topic name ([a-zA-Z0-9._-])")
        key = self.choice(item["key"], f"{path}.key", get_args(Key))
        expected_key = ROLE_KEYS.get(role or "")
        if key is not None and expected_key is not None and key != expected_key:
            self.issue(f"{path}.key", f"must be {expected_key}: the engine keys {role} by it")
        key_optional = item.get("key_optional", False)
        if not isinstance(key_optional, bool):
            self.issue(f"{path}.key_optional", f"must be true or false, got {key_optional!r}")
        partitions = default_partitions
        if "partitions" in item:
            self.positive_int(item["partitions"], f"{path}.partitions")
            partitions = item["partitions"]
        retention_ms = item["retention_ms"]
        if retention_ms == "forever":
            retention_ms = None
        elif not (isinstance(retention_ms, int) and not isinstance(retention_ms, bool)) or (
            retention_ms <= 0
        ):
            self.issue(
                f"{path}.retention_ms",
                f"must be a positive number of milliseconds or forever, got {retention_ms!r}",
            )
        self.choice(item["cleanup"], f"{path}.cleanup", get_args(Cleanup))
        self.text(item["description"], f"{path}.description")
        if "max_message_bytes" in item:
            self.positive_int(item["max_message_bytes"], f"{path}.max_message_bytes")
        for field in ("segment_ms", "delete_retention_ms"):
            if field in item:
                self.positive_int(item[field], f"{path}.{field}")
        ratio = item.get("min_cleanable_dirty_ratio")
        if "min_cleanable_dirty_ratio" in item and not (
            isinstance(ratio, int | float) and not isinstance(ratio, bool) and 0 < ratio <= 1
        ):
            self.issue(
                f"{path}.min_cleanable_dirty_ratio", f"must be a number in (0, 1], got {ratio!r}"
            )
        if len(self.issues) > before:
            return None
        # Every field is checked above, so this conversion cannot fail; it gives the typed,
        # frozen Struct the rest of the engine uses.
        return msgspec.convert(
            {
                **{field: item[field] for field in _TOPIC_FIELDS if field in item},
                "partitions": partitions,
                "replication": replication,
                "retention_ms": retention_ms,
            },
            TopicSpec,
        )

    def copartitioned(self, specs: list[TopicSpec], data: list[object]) -> None:
        """The wallet-keyed topics are read together by one agent per partition: a wallet's
        CDRs, commands, events and actions must have the same partition number, which only
        holds when the partition counts are equal. A partition's snapshots live on the same
        partition number (keyed by partition), so that topic counts too."""
        wallet = [spec for spec in specs if spec.key in ("wallet_id", "partition")]
        if len({spec.partitions for spec in wallet}) <= 1:
            return
        first = wallet[0]
        counts = ", ".join(f"{spec.name} {spec.partitions}" for spec in wallet)
        for spec in wallet[1:]:
            if spec.partitions != first.partitions:
                index = next(
                    i
                    for i, item in enumerate(data)
                    if isinstance(item, dict) and item.get("name") == spec.name
                )
                self.issue(
                    f"topics[{index}].partitions",
                    "the topics keyed by wallet_id are co-partitioned and must share one "
                    f"partition count ({counts})",
                )
                return

    def changelogs(self, data: object) -> Changelogs | None:
        if not isinstance(data, dict):
            self.issue("changelogs", "must be a mapping (pattern, cleanup, description)")
            return None
        self.unknown(data, "changelogs", ("pattern", "cleanup", "description"))
        pattern = self.text(data.get("pattern"), "changelogs.pattern")
        if pattern is not None and not {"{app_id}", "{table}"} <= set(
            re.findall(r"\{\w+\}", pattern)
        ):
            self.issue("changelogs.pattern", "must contain {app_id} and {table}")
            pattern = None
        cleanup = data.get("cleanup")
        if cleanup != "compact":
            self.issue(
                "changelogs.cleanup",
                f"must be compact (Faust compacts changelogs), got {cleanup!r}",
            )
        description = self.text(data.get("description"), "changelogs.description")
        if pattern is None or description is None or cleanup != "compact":
            return None
        return Changelogs(pattern=pattern, cleanup="compact", description=description)
