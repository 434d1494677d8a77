"""Every topic of topics.yaml under names unique to one test, created on the session's
broker and deleted afterwards, with ``RATING_TOPICS`` pointing at the copy."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from confluent_kafka.admin import AdminClient

from engine.stream.admin import apply_topics
from engine.stream.topics import REPO_TOPICS, Topics, load_topics


@contextmanager
def fresh_topics(
    bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Topics]:
    prefix = f"r{uuid.uuid4().hex[:10]}."
    data = yaml.safe_load(REPO_TOPICS.read_text())
    for item in data["topics"]:
        item["name"] = prefix + item["name"]
    path = tmp_path / "topics.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("RATING_TOPICS", str(path))
    monkeypatch.delenv("RATING_TOPICS_REPLICATION", raising=False)
    loaded = load_topics(path)
    assert apply_topics(loaded, bootstrap).ok
    try:
        yield loaded
    finally:
        client = AdminClient({"bootstrap.servers": bootstrap})
        names = [s.name for s in loaded.all]
        for future in client.delete_topics(names, operation_timeout=30).values():
            future.result(timeout=30)
