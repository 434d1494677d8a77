"""The parts of a wallet's state that a snapshot writes apart from its record, in chunks:
its input ids (the dedup generations, the commands that moved money) and any of its maps
too large to ride in the record (a fleet's SIMs, their tier counters). A wallet's chunks
are numbered in one sequence: the ids first, in `ID_ORDER`, then each large map, in
`MAP_ORDER`.

A chunk is known by its `Span`: which field, what holds its entries, and which range of
them. A dedup generation is a log its keys are only ever appended to (``keylog.KeyLog``),
so its full chunks keep their spans until the generation is dropped; a map is replaced
whole by any change, so its chunks keep theirs while the map is the same object. A
snapshot writes a wallet's chunk only when its span differs from the one its previous
record had at that index (snapshots.wallet_records).
"""

from __future__ import annotations

import collections
from collections.abc import Iterator, Sequence
from itertools import islice, repeat
from typing import Any

from ..domain import WalletState
from ..domain.keylog import KeyLog
from ..states import DEDUP_FIELDS, MAP_ORDER

CHUNK_IDS = 4096
"""Input ids per chunk: at most a few hundred kB, whatever the wallet's traffic."""

CHUNK_ENTRIES = 1024
"""Entries per chunk of a large map, and the most a map may hold and still ride in the
wallet's record: a SIM's subscription or history is about 100 bytes, so neither a chunk
nor a record of a few such maps comes near Kafka's record limit of about 1 MiB."""

ID_ORDER = ("seen_before", "seen", "commands")
"""The order a wallet's ids are chunked in: the older dedup generation first, which no
longer grows, so a key appended to the newer one moves no chunk before it."""

FIELDS = (*DEDUP_FIELDS, *MAP_ORDER)
"""What a span's field numbers: the ids' fields (the number an ids chunk's entries carry),
then the maps."""

Span = tuple[int, object, int, int]
"""Where one chunk's entries come from: the field (its index in `FIELDS`), what holds them
(a `KeyLog`'s shared list of keys, or a ``Map``), and the range ``[start, end)`` of them.
Two spans with the same holder object and range hold the same entries: a `KeyLog` only
ever appends to its list (each key with its instant, once), and a ``Map`` never changes."""

Layout = list[tuple[Span, int]]
"""A wallet's chunks as its latest record in the epoch has them: each chunk's span and the
``events_offset`` of the snapshot that wrote it."""

NO_IDS: Span = (0, None, 0, 0)
"""The one chunk of a wallet without ids or large maps: empty."""


def spans(state: WalletState) -> list[Span]:
    """The spans of ``state``'s chunks: its ids in `ID_ORDER`, at most `CHUNK_IDS` each,
    then each map of more than `CHUNK_ENTRIES` entries in `MAP_ORDER`, that many each."""
    out: list[Span] = []
    for name in ID_ORDER:
        ids = getattr(state, name)
        holder = ids.names if isinstance(ids, KeyLog) else ids
        out += _cut(FIELDS.index(name), holder, len(ids), CHUNK_IDS)
    for name in MAP_ORDER:
        entries = getattr(state, name)
        if len(entries) > CHUNK_ENTRIES:
            out += _cut(FIELDS.index(name), entries, len(entries), CHUNK_ENTRIES)
    return out


def _cut(field: int, holder: object, size: int, step: int) -> list[Span]:
    return [(field, holder, i, min(i + step, size)) for i in range(0, size, step)]


FIELD_STRIDE = 1_000_000
"""A chunk's number (its record's key, ``ids/<wallet>/<number>``) is its field's index in
`FIELDS` times this, plus its place among the field's chunks: a field gaining or losing a
chunk moves no other field's chunks, so those stay as written."""


def number(span: Span) -> int:
    field, _, start, _ = span
    step = CHUNK_IDS if field < len(DEDUP_FIELDS) else CHUNK_ENTRIES
    return field * FIELD_STRIDE + start // step


def apart(made: Sequence[Span]) -> list[str]:
    """The maps whose chunks ``made`` names, which the wallet's record then leaves out."""
    return [FIELDS[f] for f in sorted({s[0] for s in made if s[0] >= len(DEDUP_FIELDS)})]


def same(a: Span, b: Span) -> bool:
    # By identity: another list or map with equal contents may order its entries otherwise.
    return a[1] is b[1] and a[0] == b[0] and a[2] == b[2] and a[3] == b[3]


SEQUENTIAL = 16
"""A log's instants are read in one pass when a snapshot writes at least a sixteenth of it:
read in order, an instant costs a few nanoseconds; looked up by its key in a log of a
million, a few hundred (a cache miss or two), about thirty times as much."""


class ChunkReader:
    """The entries of the chunks one wallet's snapshot writes, asked for in the order of
    their spans: an ids chunk's as ``(field, key, instant)`` (states.split_ids), a map
    chunk's as ``(key, value)``."""

    def __init__(self, state: WalletState, wanted: list[Span]) -> None:
        self.state = state
        self.passes: dict[int, tuple[Iterator[tuple[Any, Any]], int]] = {}
        """The pass over each map so far, and where it stands: one pass serves all its
        chunks (a chunk not asked for is passed over)."""
        self.instants: dict[int, list[int]] = {}
        """A log's instants in its order, read in one pass when enough of it is written. A
        log's dict holds its keys in the order of its list (both only ever get a key
        appended, together), and a snapshot runs on the thread that appends."""
        for field, chunks in collections.Counter(span[0] for span in wanted).items():
            ids = getattr(state, FIELDS[field])
            if isinstance(ids, KeyLog) and chunks * CHUNK_IDS * SEQUENTIAL >= len(ids):
                self.instants[field] = list(islice(ids.instants.values(), len(ids)))

    def ids(self, span: Span) -> list[tuple[int, str, int]]:
        field, _, start, end = span
        ids = getattr(self.state, FIELDS[field])
        if isinstance(ids, KeyLog):
            keys = ids.names[start:end]
            instants = self.instants.get(field)
            if instants is not None:
                return list(zip(repeat(field), keys, instants[start:end]))
            by_key = ids.instants
            return [(field, key, by_key[key]) for key in keys]
        return [(field, key, at) for key, at in self.entries(span)]

    def entries(self, span: Span) -> list[tuple[Any, Any]]:
        """A map's entries ``[start, end)``, in its order."""
        field, _, start, end = span
        pairs, at = self.passes.get(field) or (iter(getattr(self.state, FIELDS[field]).items()), 0)
        # Taken by islice, in C: a Python loop over a fleet's entries was most of its snapshot.
        if start > at:
            collections.deque(islice(pairs, start - at), maxlen=0)
        self.passes[field] = (pairs, end)
        return list(islice(pairs, end - start))


Shape = tuple[int, int | None]
"""A chunk as read: how many entries, and the field of its first and last (``None`` for an
empty chunk, -1 when they differ)."""


def read_layout(
    state: WalletState, read: Sequence[Shape], numbers: Sequence[int], chunks_at: Sequence[int]
) -> Layout | None:
    """The layout of ``state``'s chunks as they were ``read`` (numbered ``numbers``), or
    ``None`` when they are not the chunks `spans` makes of it (written with another
    `CHUNK_IDS`, in another order, or numbered otherwise): a chunk is known by its span
    only if it holds that span's field and count under that span's number, so a snapshot
    that keeps it keeps what the span holds. The spans name the restored logs, which the
    states the recovered owner decides on go on appending to."""
    made = spans(state) or [NO_IDS]
    if not chunks_at or list(numbers) != [number(span) for span in made]:
        return None  # a record written before chunks were kept, or numbered by field
    for (field, _, start, end), (count, of) in zip(made, read, strict=True):
        if count != end - start or of not in (field, None):
            return None
    # A map built again iterates in another order (string hashes differ from one process
    # to the next): its chunks as read are not its spans. A new holder: never kept.
    made = [(f, h if isinstance(h, list) else object(), a, b) for f, h, a, b in made]
    return list(zip(made, chunks_at, strict=True))


def ids_shape(ids: list[tuple[int, str, int]]) -> Shape:
    if not ids:
        return 0, None
    first, last = ids[0][0], ids[-1][0]
    return len(ids), first if first == last else -1
