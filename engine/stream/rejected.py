"""What waits on ``cdr.rejected``: listed, exported for repair, or sent again.

A rejected record keeps its original bytes and where it came from (``topic/partition@offset``).
Once the cause is fixed (the SIM provisioned, the zone added, the record corrected by hand),
the record goes back to the topic it came from and is decided like any other. Sending one
again is safe: a CDR already rated is recognised by its key and rejected as ``duplicate``, a
command by its id, so nothing is charged twice.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterable, Iterator

import msgspec

from ..codec import Rejected
from .acls import REJECTED_GROUP
from .admin import admin_client, cluster_metadata
from .recovery import read_partition
from .topics import Topics


class RejectedRecord(msgspec.Struct, frozen=True):
    """One record of ``cdr.rejected``, where it sits and what it says."""

    partition: int
    offset: int
    rejected: Rejected

    @property
    def original(self) -> bytes | None:
        """The bytes that were rejected, or ``None`` when only a part of them was kept."""
        r = self.rejected
        if r.raw is not None:
            return r.raw.encode()
        if r.raw_base64 is not None:
            return base64.b64decode(r.raw_base64)
        return None

    @property
    def origin_topic(self) -> str | None:
        """The topic the record first entered (``None`` for an offline ``file:line``)."""
        topic, slash, place = self.rejected.origin.rpartition("/")
        return topic if slash and "@" in place else None


def read_rejected(bootstrap: str, topics: Topics) -> Iterator[RejectedRecord]:
    """Every record on ``cdr.rejected`` now, partition by partition, oldest first.

    A record that is not a rejection (written there by something else) is reported, not
    skipped: the topic is evidence.
    """
    name = topics.cdr_rejected.name
    cluster_metadata(admin_client(bootstrap), bootstrap, name)
    decoder = msgspec.json.Decoder(Rejected)
    for partition in range(topics.cdr_rejected.partitions):
        for message in read_partition(bootstrap, name, partition, group=REJECTED_GROUP):
            try:
                rejected = decoder.decode(message.value() or b"")
            except msgspec.MsgspecError as exc:
                rejected = Rejected("unreadable_rejection", str(exc), f"{name}/{partition}")
            yield RejectedRecord(partition, message.offset() or 0, rejected)


def select(
    records: Iterable[RejectedRecord], reasons: Iterable[str] = ()
) -> Iterator[RejectedRecord]:
    """The records with one of ``reasons`` (all of them when none is given)."""
    wanted = set(reasons)
    for record in records:
        if not wanted or record.rejected.reason in wanted:
            yield record


class Tally(msgspec.Struct):
    """How many records there are per reason and per origin topic."""

    records: int = 0
    by_reason: dict[str, int] = {}
    by_origin: dict[str, int] = {}

    @classmethod
    def of(cls, records: Iterable[RejectedRecord]) -> Tally:
        reasons: Counter[str] = Counter()
        origins: Counter[str] = Counter()
        for record in records:
            reasons[record.rejected.reason] += 1
            origins[record.origin_topic or "(offline)"] += 1
        return cls(sum(reasons.values()), dict(reasons.most_common()), dict(origins))


def as_line(original: bytes) -> bytes | None:
    """``original`` as one line of a JSON Lines file, or ``None`` when it is not text.

    Newlines between JSON tokens become spaces (a newline inside a JSON string is invalid
    anyway), so a pretty-printed record survives the trip through a line file.
    """
    try:
        original.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return original.replace(b"\r\n", b" ").replace(b"\n", b" ").replace(b"\r", b" ")
