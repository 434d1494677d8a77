"""Snapshots of a wallet partition on ``wallet.snapshots``, one record per wallet, so a
restart replays little and no record grows with the partition.

A snapshot is the partition's state as it stood after a given offset of ``wallet.events``.
It is written by the partition's owner in the partition's transaction (fencing.py), so only
the owner's ever lands, and it is made of records on the snapshot partition numbered like
the wallet partition, each under its own key (compaction keeps the latest of each):

- ``wallet/<id>``: one wallet's state without its input ids and large maps
  (`WalletRecord`);
- ``ids/<id>/<n>``: the wallet's chunks (chunks.py): its input ids (dedup window,
  commands that moved money) in chunks of at most `CHUNK_IDS` (`IdsChunk`), then each of
  its maps larger than `CHUNK_ENTRIES` (a fleet's SIMs, their tier counters) in chunks of
  that many entries (`MapChunk`), so neither a busy wallet nor a large one makes one huge
  record; the wallet's record names the snapshot that wrote each chunk;
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
starts a new epoch.

Of a wallet written, only the chunks that changed since its previous record in the epoch
are (`Span`): a dedup generation is a log its keys are only ever appended to
(``keylog.KeyLog``), and the older generation is chunked first, so full chunks stay as
they were written until their generation is dropped, and a busy wallet's snapshot costs
what it added since, not its whole window; a large map's chunks stay while the map is
the same (a fleet's SIMs between two provisionings); a recovered owner knows the id
chunks it read (`read_layout`), so its first snapshot does not write them all again
either. The wallet's record names the snapshot that wrote each of its chunks, and always
comes with its last chunk (an empty one for a wallet without any): a chunk lost since
leaves an older version than the record names, and a record lost leaves a chunk newer
than the record before it; either way the snapshot is not whole.

Every record names its epoch and offset; recovery (`restore`) takes the latest manifest
and the latest records of its epoch, and uses them only when they are whole (each wallet
of the manifest, each chunk of each wallet from the snapshot its wallet record names, none
newer than the manifest). Otherwise, or when the decision the manifest names is not at its
offset of the log (processor.recover), the partition is replayed from ``wallet.events``. A
missing or older snapshot is never wrong, only slower.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import msgspec

from ..domain import WalletState
from ..states import (
    DEDUP_FIELDS,
    StateRecord,
    decode_pairs,
    encode_pairs,
    from_record,
    join_ids,
    to_record,
    without,
)
from .chunks import (
    FIELDS,
    NO_IDS,
    ChunkReader,
    Layout,
    Shape,
    Span,
    apart,
    ids_shape,
    number,
    read_layout,
    same,
    spans,
)
from .processor import REORDER_WINDOW, PartitionState

__all__ = ["StateRecord", "from_record", "to_record"]


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
    """The wallet's state without its input ids and the maps its chunks hold."""
    chunks: int
    """How many ``ids/`` records hold its input ids and large maps."""
    chunks_at: list[int] = []
    """Each chunk's ``events_offset``: the snapshot of this epoch that wrote it (empty in
    a record written before chunks were kept: every chunk is then this record's own)."""


class NumberedRecord(WalletRecord, tag="n"):
    """A `WalletRecord` whose chunks are numbered by field, and may hold maps: what this
    version writes. A record tagged ``w`` numbers its chunks 0, 1, 2..., ids only. The tag
    is new so that an earlier version, which would read the chunks at 0, 1, 2... and know
    no map chunk, does not decode the record: it takes the snapshot as torn and replays."""

    numbers: list[int] = []
    """Each chunk's number (chunks.number)."""


class IdsChunk(msgspec.Struct, tag="i", array_like=True, gc=False):
    partition: int
    epoch: str
    events_offset: int
    wallet_id: str
    index: int
    ids: list[tuple[int, str, int]]
    """``(field, key, instant)`` (states.split_ids)."""


class MapChunk(msgspec.Struct, tag="c", array_like=True, gc=False):
    partition: int
    epoch: str
    events_offset: int
    wallet_id: str
    index: int
    field: str
    """Which map of the wallet's state (states.MAP_ORDER)."""
    entries: msgspec.Raw
    """Its entries, as the wallet's record would hold them (states.encode_pairs)."""


SnapshotRecord = Manifest | WalletRecord | NumberedRecord | IdsChunk | MapChunk

_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[SnapshotRecord] = msgspec.msgpack.Decoder(SnapshotRecord)


def new_epoch() -> str:
    return os.urandom(8).hex()


def manifest_key(partition: int) -> bytes:
    return f"partition-{partition}".encode()


def wallet_records(
    partition: int,
    epoch: str,
    events_offset: int,
    state: WalletState,
    before: Sequence[tuple[Span, int]] = (),
) -> tuple[list[tuple[bytes, bytes]], Layout]:
    """``(key, value)`` of one wallet's records, its chunks then its state, and the
    layout they leave. ``before``: the layout of the wallet's latest record in this epoch;
    a chunk with the same span there is not written again. Each chunk is made and encoded
    before the next."""
    w = state.wallet_id
    out = []
    # A wallet record always comes with its last chunk (an empty one for a wallet without
    # any), so that the record lost leaves a chunk newer than the one before it: `_assemble`.
    made = spans(state) or [NO_IDS]
    numbers = [number(span) for span in made]
    prior = {number(span): (span, at) for span, at in before}
    kept = [n in prior and same(prior[n][0], span) for n, span in zip(numbers, made, strict=True)]
    kept[-1] = False
    reader = ChunkReader(state, [span for span, k in zip(made, kept, strict=True) if not k])
    layout: Layout = []
    for index, span, k in zip(numbers, made, kept, strict=True):
        if k:
            layout.append(prior[index])
            continue
        chunk: IdsChunk | MapChunk
        if span[0] < len(DEDUP_FIELDS):
            chunk = IdsChunk(partition, epoch, events_offset, w, index, reader.ids(span))
        else:
            entries = msgspec.Raw(encode_pairs(reader.entries(span)))
            chunk = MapChunk(partition, epoch, events_offset, w, index, FIELDS[span[0]], entries)
        out.append((f"ids/{w}/{index}".encode(), _encoder.encode(chunk)))
        layout.append((span, events_offset))
    chunks_at = [at for _, at in layout]
    bare = to_record(without(state, (*DEDUP_FIELDS, *apart(made))))
    record = NumberedRecord(partition, epoch, events_offset, bare, len(layout), chunks_at, numbers)
    out.append((f"wallet/{w}".encode(), _encoder.encode(record)))
    return out, layout


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
        out += wallet_records(partition, epoch, part.events_offset, part.wallets[w])[0]
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
    layouts: dict[str, Layout]
    """Each wallet's chunks as read, where they are its state's spans (`read_layout`)."""


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
    chunks: dict[tuple[str, int], IdsChunk | MapChunk] = {}
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
        return Snapshot(None, unreadable, None, {})
    layouts: dict[str, Layout] = {}
    try:
        return Snapshot(
            _assemble(manifest, wallets, chunks, layouts), False, manifest.epoch, layouts
        )
    except Torn:
        return Snapshot(None, True, None, {})


def _assemble(
    m: Manifest,
    wallets: dict[str, WalletRecord],
    chunks: dict[tuple[str, int], IdsChunk | MapChunk],
    layouts: dict[str, Layout],
) -> PartitionState:
    states: dict[str, WalletState] = {}
    newest: dict[tuple[str, str], int] = {}
    """Per wallet and epoch, the newest of its chunks' snapshots."""
    for (w, _), written in chunks.items():
        if written.events_offset > newest.get((w, written.epoch), -1):
            newest[(w, written.epoch)] = written.events_offset
    for w in list(wallets):
        record = wallets.pop(w)  # each wallet's records go as its state is made
        if record.epoch != m.epoch:
            continue  # an earlier epoch's record of a wallet this one does not hold
        if record.events_offset > m.events_offset:
            raise Torn(f"wallet {w} is newer than the manifest")
        # A chunk is written only with its wallet's record, and every record with its last
        # chunk: a chunk newer than the record means the record written with it is lost.
        if newest.get((w, record.epoch), -1) > record.events_offset:
            raise Torn(f"wallet {w} has a chunk newer than its record")
        states[w], read = _wallet(record, chunks)
        layout = read_layout(states[w], read, _numbers(record), record.chunks_at)
        if layout is not None:
            layouts[w] = layout
    if len(states) != m.wallets:
        raise Torn(f"{len(states)} wallet records, the manifest names {m.wallets}")
    decided = {(t, p): o for t, p, o in m.decided}
    recent = {(t, p): set(o) for t, p, o in m.recent}
    return PartitionState(states, decided, m.events_offset, recent, m.last_decision)


def _wallet(
    record: WalletRecord, chunks: dict[tuple[str, int], IdsChunk | MapChunk]
) -> tuple[WalletState, list[Shape]]:
    """A wallet's state from its record and the chunks it names (taken from ``chunks``),
    and the shape of each chunk as read."""
    w = record.state.wallet_id  # type: ignore[attr-defined]
    chunks_at = record.chunks_at or [record.events_offset] * record.chunks
    numbers = _numbers(record)
    if not len(chunks_at) == len(numbers) == record.chunks:
        raise Torn(f"wallet {w} names {len(chunks_at)} chunks of {record.chunks}")
    ids: list[tuple[int, str, int]] = []
    maps: dict[str, list[tuple[Any, Any]]] = {}
    read: list[Shape] = []
    for index, at in zip(numbers, chunks_at, strict=True):
        chunk = chunks.pop((w, index), None)
        if chunk is None or (chunk.epoch, chunk.events_offset) != (record.epoch, at):
            raise Torn(f"wallet {w} lacks its chunk {index}")
        if at > record.events_offset:
            raise Torn(f"wallet {w}'s chunk {index} is newer than its record")
        if isinstance(chunk, IdsChunk):
            ids += chunk.ids
            read.append(ids_shape(chunk.ids))
            continue
        try:
            entries = decode_pairs(chunk.field, chunk.entries)
        except (KeyError, msgspec.MsgspecError):
            raise Torn(f"wallet {w}'s chunk {index} is not of a map it knows") from None
        maps.setdefault(chunk.field, []).extend(entries)
        read.append((len(entries), FIELDS.index(chunk.field)))
    state = record.state
    if maps:
        joined = {name: getattr(state, name) + entries for name, entries in maps.items()}
        state = msgspec.structs.replace(state, **joined)
    return join_ids(from_record(state), ids), read


def _numbers(record: WalletRecord) -> list[int]:
    if isinstance(record, NumberedRecord):
        return record.numbers
    return list(range(record.chunks))
