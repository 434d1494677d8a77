"""Which catalog revision is the latest: read from ``catalog.revisions`` on a real broker."""

from __future__ import annotations

import msgspec
import pytest
from confluent_kafka import Producer

from engine.stream.producer import PRODUCER_CONFIG
from engine.stream.revisions import latest_revision
from engine.stream.topics import StreamError, Topics


def test_none_published_is_zero_then_the_greatest_number(
    kafka_bootstrap: str, fresh_topics: Topics
) -> None:
    assert latest_revision(kafka_bootstrap, fresh_topics) == 0
    producer = Producer({**PRODUCER_CONFIG, "bootstrap.servers": kafka_bootstrap})
    for revision in ("1", "2", "10", "9"):  # by number, not as text; "9" re-sent late
        producer.produce(fresh_topics.catalog_revisions.name, key=revision, value=b"{}")
    assert producer.flush(30) == 0
    assert latest_revision(kafka_bootstrap, fresh_topics) == 10


def test_a_missing_topic_is_a_clear_error(kafka_bootstrap: str, fresh_topics: Topics) -> None:
    spec = msgspec.structs.replace(fresh_topics.catalog_revisions, name="absent.revisions")
    topics = msgspec.structs.replace(fresh_topics, catalog_revisions=spec)
    with pytest.raises(StreamError, match=r"absent\.revisions does not exist .* topics apply"):
        latest_revision(kafka_bootstrap, topics)
