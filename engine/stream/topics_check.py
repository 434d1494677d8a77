"""The checks of a topics file (``topics.yaml``), every issue collected with its file, line
and path before giving up; `topics.load_topics` is the way in."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import get_args

import msgspec

from ..catalog.yaml_source import Source
from .topics import (
    _LEGAL_NAME,
    _TOPIC_FIELDS,
    ENV_REPLICATION,
    ROLE_KEYS,
    ROLES,
    Changelogs,
    Cleanup,
    Key,
    Topics,
    TopicsError,
    TopicSpec,
)


class TopicsChecker:
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
        self.compaction(item, path)
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

    def compaction(self, item: dict[str, object], path: str) -> None:
        """The optional settings of how a compacted topic is cleaned."""
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
