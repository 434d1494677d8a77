"""Snapshots of a wallet partition on ``wallet.snapshots``, one record per wallet, so a
restart replays little and no record grows with the partition.

A snapshot is the partition's state as it stood after a given offset of ``wallet.events``.
It is written by the partition's owner in the partition's transaction (fencing.py), so only
the owner's ever lands, and it is made of records on the snapshot partition numbered like
the wallet partition, each under its own key (compaction keeps the latest of each):

- ``wallet/<id>``: one wallet's state without its input ids (`WalletRecord`);
- ``ids/<id>/<n>``: the wallet's input ids (dedup window, commands that moved money) in
  chunks of at most `CHUNK_IDS` (`IdsChunk`), so a busy wallet's ids never make one
  huge record; the wallet's record names the snapshot that wrote each chunk;
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

Of a wallet written, only the id chunks that changed since its previous record in the
epoch are (`Span`): a dedup generation is a log its keys are only ever appended to
(``keylog.KeyLog``), and the older generation is chunked first, so full chunks stay as
they were written until their generation is dropped, and a busy wallet's snapshot costs
what it added since, not its whole window; a recovered owner knows the chunks it read
(`read_layout`), so its first snapshot does not write them all again either. The wallet's
record names the snapshot that wrote each of its chunks, and always comes with its last
chunk (an empty one for a wallet without ids): a chunk lost since leaves an older version
than the record names, and a record lost leaves a chunk newer than the record before it;
either way the snapshot is not whole.

Every record names its epoch and offset; recovery (`restore`) takes the latest manifest
and the latest records of its epoch, and uses them only when they are whole (each wallet
of the manifest, each chunk of each wallet from the snapshot its wallet record names, none
newer than the manifest). Otherwise, or when the decision the manifest names is not at its
offset of the log (processor.recover), the partition is replayed from ``wallet.events``. A
missing or older snapshot is never wrong, only slower.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice, repeat
from typing import NamedTuple

import msgspec

from ..domain import WalletState
from ..domain.keylog import KeyLog
from ..states import DEDUP_FIELDS, StateRecord, from_record, join_ids, to_record, without_ids
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
    chunks_at: list[int] = []
    """Each chunk's ``events_offset``: the snapshot of this epoch that wrote it (empty in
    a record written before chunks were kept: every chunk is then this record's own)."""


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


ID_ORDER = ("seen_before", "seen", "commands")
"""The order a wallet's ids are chunked in: the older dedup generation first, which no
longer grows, so a key appended to the newer one moves no chunk before it."""

Span = tuple[int, object, int, int]
"""Where one ids chunk's ids come from: the field (its index in `DEDUP_FIELDS`), what holds
them (a `KeyLog`'s shared list of keys, or a ``Map``), and the range ``[start, end)`` of
them. Two spans with the same holder object and range hold the same ids: a `KeyLog` only
ever appends to its list (each key with its instant, once), and a ``Map`` never changes."""

Layout = list[tuple[Span, int]]
"""A wallet's id chunks as its latest record in the epoch has them: each chunk's span and
the ``events_offset`` of the snapshot that wrote it."""


NO_IDS: Span = (0, None, 0, 0)
"""The one chunk of a wallet without ids: empty."""


def id_spans(state: WalletState) -> list[Span]:
    """The spans of ``state``'s id chunks, in `ID_ORDER`, at most `CHUNK_IDS` ids each."""
    spans: list[Span] = []
    for name in ID_ORDER:
        ids = getattr(state, name)
        holder = ids.names if isinstance(ids, KeyLog) else ids
        field, size = DEDUP_FIELDS.index(name), len(ids)
        spans += [(field, holder, i, min(i + CHUNK_IDS, size)) for i in range(0, size, CHUNK_IDS)]
    return spans


SEQUENTIAL = 16
"""A log's instants are read in one pass when a snapshot writes at least a sixteenth of it:
read in order, an instant costs a few nanoseconds; looked up by its key in a log of a
million, a few hundred (a cache miss or two), about thirty times as much."""


class _ChunkIds:
    """The ids of the chunks one wallet's snapshot writes, as ``(field, key, instant)``
    (states.split_ids), asked for in the order of their spans."""

    def __init__(self, state: WalletState, wanted: list[Span]) -> None:
        self.state = state
        self.passes: dict[int, Iterator[tuple[int, tuple[str, int]]]] = {}
        """The pass over each map so far: one pass serves all its chunks (a chunk not asked
        for is passed over)."""
        self.instants: dict[int, list[int]] = {}
        """A log's instants in its order, read in one pass when enough of it is written. A
        log's dict holds its keys in the order of its list (both only ever get a key
        appended, together), and a snapshot runs on the thread that appends."""
        for field, chunks in collections.Counter(span[0] for span in wanted).items():
            ids = getattr(state, DEDUP_FIELDS[field])
            if isinstance(ids, KeyLog) and chunks * CHUNK_IDS * SEQUENTIAL >= len(ids):
                self.instants[field] = list(islice(ids.instants.values(), len(ids)))

    def of(self, span: Span) -> list[tuple[int, str, int]]:
        field, _, start, end = span
        ids = getattr(self.state, DEDUP_FIELDS[field])
        if isinstance(ids, KeyLog):
            keys = ids.names[start:end]
            instants = self.instants.get(field)
            if instants is not None:
                return list(zip(repeat(field), keys, instants[start:end]))
            by_key = ids.instants
            return [(field, key, by_key[key]) for key in keys]
        out = []
        for i, (key, at) in self.passes.setdefault(field, enumerate(ids.items())):
            if i >= start:
                out.append((field, key, at))
            if i + 1 >= end:
                break
        return out


def _same(a: Span, b: Span) -> bool:
    # By identity: another list or map with equal contents may order its ids otherwise.
    return a[1] is b[1] and a[0] == b[0] and a[2] == b[2] and a[3] == b[3]


def wallet_records(
    partition: int,
    epoch: str,
    events_offset: int,
    state: WalletState,
    before: Sequence[tuple[Span, int]] = (),
) -> tuple[list[tuple[bytes, bytes]], Layout]:
    """``(key, value)`` of one wallet's records, its id chunks then its state, and the
    layout they leave. ``before``: the layout of the wallet's latest record in this epoch;
    a chunk with the same span there is not written again. Each chunk is made and encoded
    before the next."""
    w = state.wallet_id
    out = []
    # A wallet record always comes with its last chunk (an empty one for a wallet without
    # ids), so that the record lost leaves a chunk newer than the one before it: `_assemble`.
    spans = id_spans(state) or [NO_IDS]
    kept = [i < len(before) and _same(before[i][0], span) for i, span in enumerate(spans)]
    kept[-1] = False
    ids = _ChunkIds(state, [span for span, k in zip(spans, kept, strict=True) if not k])
    layout: Layout = []
    for index, span in enumerate(spans):
        if kept[index]:
            layout.append(before[index])
            continue
        ids_chunk = IdsChunk(partition, epoch, events_offset, w, index, ids.of(span))
        out.append((f"ids/{w}/{index}".encode(), _encoder.encode(ids_chunk)))
        layout.append((span, events_offset))
    chunks_at = [at for _, at in layout]
    bare = to_record(without_ids(state))
    record = WalletRecord(partition, epoch, events_offset, bare, len(layout), chunks_at)
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
    """Each wallet's id chunks as read, where they are its state's spans (`read_layout`)."""


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
        return Snapshot(None, unreadable, None, {})
    layouts: dict[str, Layout] = {}
    try:
        return Snapshot(
            _assemble(manifest, wallets, chunks, layouts), False, manifest.epoch, layouts
        )
    except Torn:
        return Snapshot(None, True, None, {})


def read_layout(
    state: WalletState, read: Sequence[tuple[int, int | None]], chunks_at: Sequence[int]
) -> Layout | None:
    """The layout of ``state``'s id chunks as they were ``read`` (each chunk's count of ids
    and the field of its first and last, `_shape`), or ``None`` when they are not the
    chunks `id_spans` makes of it (written with another `CHUNK_IDS`, or in another order):
    a chunk is known by its span only if it holds that span's field and count, so a
    snapshot that keeps it keeps what the span holds. The spans name the restored logs,
    which the states the recovered owner decides on go on appending to."""
    spans = id_spans(state) or [NO_IDS]
    if not chunks_at or len(spans) != len(read):
        return None  # a record written before chunks were kept: its chunks are rewritten
    for (field, _, start, end), (count, of) in zip(spans, read, strict=True):
        if count != end - start or of not in (field, None):
            return None
    # A map built again iterates in another order (string hashes differ from one process
    # to the next): its chunks as read are not its spans. A new holder: never kept.
    spans = [(f, h if isinstance(h, list) else object(), a, b) for f, h, a, b in spans]
    return list(zip(spans, chunks_at, strict=True))


def _shape(ids: list[tuple[int, str, int]]) -> tuple[int, int | None]:
    """A chunk's count of ids and the field of its first and last (``None`` for an empty
    chunk, -1 when they differ)."""
    if not ids:
        return 0, None
    first, last = ids[0][0], ids[-1][0]
    return len(ids), first if first == last else -1


def _assemble(
    m: Manifest,
    wallets: dict[str, WalletRecord],
    chunks: dict[tuple[str, int], IdsChunk],
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
            raise Torn(f"wallet {w} has an ids chunk newer than its record")
        chunks_at = record.chunks_at or [record.events_offset] * record.chunks
        if len(chunks_at) != record.chunks:
            raise Torn(f"wallet {w} names {len(chunks_at)} chunks of {record.chunks}")
        ids: list[tuple[int, str, int]] = []
        read: list[tuple[int, int | None]] = []
        for index, at in enumerate(chunks_at):
            chunk = chunks.pop((w, index), None)
            if chunk is None or (chunk.epoch, chunk.events_offset) != (record.epoch, at):
                raise Torn(f"wallet {w} lacks its ids chunk {index}")
            if at > record.events_offset:
                raise Torn(f"wallet {w}'s ids chunk {index} is newer than its record")
            ids += chunk.ids
            read.append(_shape(chunk.ids))
        states[w] = join_ids(from_record(record.state), ids)
        layout = read_layout(states[w], read, record.chunks_at)
        if layout is not None:
            layouts[w] = layout
    if len(states) != m.wallets:
        raise Torn(f"{len(states)} wallet records, the manifest names {m.wallets}")
    decided = {(t, p): o for t, p, o in m.decided}
    recent = {(t, p): set(o) for t, p, o in m.recent}
    return PartitionState(states, decided, m.events_offset, recent, m.last_decision)
