"""The catalog revisions published on ``catalog.revisions``: which one is the latest.

The topic has one partition, keyed by the revision number as text, and revisions are
published in order, so the latest is the greatest key. The topic is small (one record a
revision) and compacted, so it is read whole rather than trusting its last offset (which
may be a transaction marker)."""

from __future__ import annotations

from .recovery import read_partition
from .topics import Topics


def latest_revision(bootstrap: str, topics: Topics) -> int:
    """The number of the latest published catalog revision; 0 when none is published."""
    latest = 0
    for message in read_partition(bootstrap, topics.catalog_revisions.name, 0):
        key = message.key()
        if key is not None and key.isdigit():
            latest = max(latest, int(key))
    return latest
