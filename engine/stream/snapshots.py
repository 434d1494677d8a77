"""Snapshots of a wallet partition on ``wallet.snapshots``, one record per wallet, so a
restart replays little and no record grows with the partition.

A snapshot is the partition's state as it stood after a given offset of ``wallet.events``.
It is written by the partition's owner in the partition's transaction (fencing.py), so only
the owner's ever lands, and it is made of records on the snapshot partition numbered like
the wallet partition, each under its own key (compaction keeps the latest of each):

- ``wallet/<id>``: one wallet's state without its input ids (`WalletRecord`);
- ``ids/<id>/<n>``: the wallet's input ids (dedup window, commands that moved money) in
  chunks of at most `CHUNK_IDS` (`IdsChunk`), so a busy wallet's ids never make one
  huge record;
- ``partition-<n>``: the `Manifest`, written last: the ``wallet.events`` offset the
  snapshot is as of, the decision at that offset, the decided origin offsets, and how many
  wallet records make it up.

Only the wallets that changed since the partition's previous snapshot are written: a
wallet's latest record is its state as of the latest manifest, because a wallet not
written since did not change since. That holds within one *epoch*: the records written
since an epoch's first snapshot, which writes every wallet. A partition recovered from a
verified, whole snapshot goes on in that snapshot's epoch (its records are each wallet's
state as of the manifest, which the log confirmed; the wallets the log after it changed
are other state objects, so they are written again); a partition recovered otherwise
starts a new epoch. Every record names its epoch and offset; recovery
(`restore`) takes the latest manifest and the latest records of its epoch, and uses them
only when they are whole (each wallet of the manifest, each chunk of each wallet, none
newer than the manifest). Otherwise, or when the decision the manifest names is not at its
offset of the log (processor.recover), the partition is replayed from ``wallet.events``. A
missing or older snapshot is never wrong, only slower.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from typing import NamedTuple

import msgspec

from ..domain import WalletState
from ..states import StateRecord, from_record, iter_ids, join_ids, to_record, without_ids
from .processor import REORDER_WINDOW, PartitionState

__all__ = ["StateRecord", "from_record", "to_record"]

CHUNK_IDS = 4096
"""Input ids per ``ids/`` record: at most a few hundred kB, whatever the wallet's traffic."""


class Manifest(msgspec.Struct, tag="m", array_like=True, gc=False):
    partition: int
    epoch: str
    events_offset: int
    """The last ``wallet.events`` offset (of this partition) the snapshot includes."""
    last_decision: str
    """The id of the decision at ``events_offset`` (processor.decision_id)."""
    wallets: int
    """How many wallet records of the epoch make up the snapshot."""
    decided: list[tuple[str, int, int]]
    """(origin topic, origin partition, last offset decided)."""
    recent: list[tuple[str, int, list[int]]]
    """(origin topic, origin partition, the offsets decided within the reorder window)."""


class WalletRecord(msgspec.Struct, tag="w", array_like=True, gc=False):
    partition: int
    epoch: str
    events_offset: int
    """The snapshot (manifest offset) this record was written with."""
    state: StateRecord  # type: ignore[valid-type]
    """The wallet's state without its input ids."""
    chunks: int
    """How many ``ids/`` records hold its input ids."""


class IdsChunk(msgspec.Struct, tag="i", array_like=True, gc=False):
    partition: int
    epoch: str
    events_offset: int
    wallet_id: str
    index: int
    ids: list[tuple[int, str, int]]
    """``(field, key, instant)`` (states.split_ids)."""


SnapshotRecord = Manifest | WalletRecord | IdsChunk

_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[SnapshotRecord] = msgspec.msgpack.Decoder(SnapshotRecord)


def new_epoch() -> str:
    return os.urandom(8).hex()


def manifest_key(partition: int) -> bytes:
    return f"partition-{partition}".encode()


def wallet_records(
    partition: int, epoch: str, events_offset: int, state: WalletState
) -> list[tuple[bytes, bytes]]:
    """``(key, value)`` of one wallet's records: its id chunks, then its state. The ids are
    taken a chunk at a time, each chunk encoded before the next is made."""
    w = state.wallet_id
    out = []
    ids = iter_ids(state)
    index = 0
    while chunk := list(itertools.islice(ids, CHUNK_IDS)):
        ids_chunk = IdsChunk(partition, epoch, events_offset, w, index, chunk)
        out.append((f"ids/{w}/{index}".encode(), _encoder.encode(ids_chunk)))
        index += 1
    record = WalletRecord(partition, epoch, events_offset, to_record(without_ids(state)), index)
    out.append((f"wallet/{w}".encode(), _encoder.encode(record)))
    return out


def manifest_record(partition: int, epoch: str, part: PartitionState) -> tuple[bytes, bytes]:
    """The manifest of ``part`` as it stands now (written after its wallet records)."""
    recent = []
    for (topic, p), offsets in sorted(part.recent.items()):
        # Below the window an offset is decided by `seen` without the set: not kept.
        floor = part.decided.get((topic, p), -1) - REORDER_WINDOW
        recent.append((topic, p, sorted(o for o in offsets if o > floor)))
    manifest = Manifest(
        partition,
        epoch,
        part.events_offset,
        part.last_decision,
        len(part.wallets),
        [(topic, p, offset) for (topic, p), offset in sorted(part.decided.items())],
        recent,
    )
    return manifest_key(partition), _encoder.encode(manifest)


def encode_partition(
    partition: int, part: PartitionState, epoch: str | None = None
) -> list[tuple[bytes, bytes]]:
    """A whole snapshot of ``part``: every wallet's records, then the manifest."""
    epoch = epoch or new_epoch()
    out = []
    for w in sorted(part.wallets):
        out += wallet_records(partition, epoch, part.events_offset, part.wallets[w])
    out.append(manifest_record(partition, epoch, part))
    return out


class Torn(Exception):
    """The records do not make up the snapshot their manifest names."""


def restore(
    records: Iterable[tuple[bytes | None, bytes | None]], partition: int
) -> tuple[PartitionState | None, bool]:
    """The partition's state from its snapshot records (as read from the snapshot
    partition, in order), or ``None``; and, when there is none, whether something there was
    unusable (a record that does not decode or is another partition's, a snapshot that is
    not whole): recovery then replays the partition from ``wallet.events``."""
    found = read_snapshot(records, partition)
    return found.state, found.unreadable


class Snapshot(NamedTuple):
    state: PartitionState | None
    unreadable: bool
    epoch: str | None
    """The epoch of the snapshot ``state`` was read from."""


def read_snapshot(records: Iterable[tuple[bytes | None, bytes | None]], partition: int) -> Snapshot:
    """`restore`, with the epoch of the snapshot read."""
    latest: dict[bytes, bytes] = {}
    for key, value in records:
        if key is None or value is None:
            continue
        latest.pop(key, None)  # keep the log's order of the latest of each key
        latest[key] = value
    manifest: Manifest | None = None
    unreadable = False
    wallets: dict[str, WalletRecord] = {}
    chunks: dict[tuple[str, int], IdsChunk] = {}
    for key in list(latest):
        value = latest.pop(key)  # each record's bytes go as it is decoded
        try:
            record = _decoder.decode(value)
        except msgspec.MsgspecError:
            unreadable = True
            continue
        if record.partition != partition:
            unreadable = True
        elif isinstance(record, Manifest):
            manifest = record
        elif isinstance(record, WalletRecord):
            wallets[record.state.wallet_id] = record  # type: ignore[attr-defined]
        else:
            chunks[(record.wallet_id, record.index)] = record
    if manifest is None:
        return Snapshot(None, unreadable, None)
    try:
        return Snapshot(_assemble(manifest, wallets, chunks), False, manifest.epoch)
    except Torn:
        return Snapshot(None, True, None)


def _assemble(
    m: Manifest, wallets: dict[str, WalletRecord], chunks: dict[tuple[str, int], IdsChunk]
) -> PartitionState:
    states: dict[str, WalletState] = {}
    for w in list(wallets):
        record = wallets.pop(w)  # each wallet's records go as its state is made
        if record.epoch != m.epoch:
            continue  # an earlier epoch's record of a wallet this one does not hold
        if record.events_offset > m.events_offset:
            raise Torn(f"wallet {w} is newer than the manifest")
        ids: list[tuple[int, str, int]] = []
        for index in range(record.chunks):
            chunk = chunks.pop((w, index), None)
            if chunk is None or (chunk.epoch, chunk.events_offset) != (
                record.epoch,
                record.events_offset,
            ):
                raise Torn(f"wallet {w} lacks its ids chunk {index}")
            ids += chunk.ids
        states[w] = join_ids(from_record(record.state), ids)
    if len(states) != m.wallets:
        raise Torn(f"{len(states)} wallet records, the manifest names {m.wallets}")
    decided = {(t, p): o for t, p, o in m.decided}
    recent = {(t, p): set(o) for t, p, o in m.recent}
    return PartitionState(states, decided, m.events_offset, recent, m.last_decision)
