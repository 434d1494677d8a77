"""The catalog revisions published on ``catalog.revisions``: which one is the latest.

The topic has one partition, keyed by the revision number as text, and revisions are
published in order, so the latest is the greatest key. The topic is small (one record a
revision) and compacted, so it is read whole rather than trusting its last offset (which
may be a transaction marker)."""

from __future__ import annotations

from confluent_kafka import KafkaException

from .admin import admin_client, cluster_metadata
from .recovery import read_partition
from .topics import StreamError, Topics


def latest_revision(bootstrap: str, topics: Topics) -> int:
    """The number of the latest published catalog revision; 0 when none is published.
    A broker that does not answer, or has no such topic, is a `StreamError` saying so."""
    name = topics.catalog_revisions.name
    # Asked first, and of every topic (asking of one could create it on a broker that
    # creates topics on demand): a missing topic would otherwise be retried for a while.
    if name not in cluster_metadata(admin_client(bootstrap), bootstrap).topics:
        raise StreamError(
            f"topic {name} does not exist on {bootstrap}: create the topics with "
            "`rating-engine topics apply`"
        )
    latest = 0
    try:
        for message in read_partition(bootstrap, name, 0):
            key = message.key()
            if key is not None and key.isdigit():
                latest = max(latest, int(key))
    except KafkaException as exc:
        raise StreamError(f"cannot read {name} on {bootstrap}: {exc}") from None
    return latest
