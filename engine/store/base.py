"""The event store's one interface: what every backend (SQLite, PostgreSQL) provides.

The store is append-only. Each event belongs to its wallet's stream, gets the next version
of that stream and a hash chained to the previous event of the stream, so that
``verify`` can tell an altered, missing or reordered event. Appending is idempotent on the
event id: a batch appended twice (a sink retrying after a crash) adds nothing the second
time. The inputs that were decided on (CDRs and commands) are kept beside the events,
keyed like the events' ids, so that replay can re-rate history.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import msgspec

from ..codec import stored_names, tag
from ..domain import AdjustRating, Cdr, Command, Event
from ..domain.decision import Decision


class StoredEvent(msgspec.Struct, frozen=True, gc=False):
    """One stored row: the event's JSON as written, with its place in the log."""

    position: int  # global, 1-based, gap-free in append order
    wallet_id: str
    version: int  # 1-based within the wallet's stream
    event_id: str
    type: str  # its current name, also for an event stored under a former one
    at: datetime
    payload: bytes  # the event encoded by engine.codec.encode
    hash: str  # hex sha256 over (previous hash of the stream, event_id, version, payload)


class StoredInput(msgspec.Struct, frozen=True, gc=False):
    """An input that was decided on: ``key`` is the prefix of its events' ids."""

    key: str
    wallet_id: str
    at: datetime
    item: Cdr | Command


class Problem(msgspec.Struct, frozen=True):
    """One thing ``verify`` found wrong: ``kind`` is altered, missing or reordered; with a
    keyed chain also keyed (no key to check it), unkeyed or downgraded (see ``chain.py``);
    against an anchor truncated or rewritten (``anchor.py``)."""

    wallet_id: str
    version: int
    event_id: str
    kind: str
    detail: str


class StoreStats(msgspec.Struct, frozen=True):
    """What ``rating-engine store stats`` prints."""

    events: int
    streams: int
    inputs: int
    position: int


class StoredRevision(msgspec.Struct, frozen=True):
    """A published catalog revision as the store keeps it (the fields of the record on
    ``catalog.revisions``): ``digest`` is the sha256 hex of ``source`` as UTF-8."""

    revision: int
    digest: str
    name: str
    source: str
    published_at: str


class WalletSnapshot(msgspec.Struct, frozen=True, gc=False):
    """A wallet's state as of a cut of the store: folded from its events up to
    ``position``, which answer exactly its inputs up to ``input_seq`` (an append stores
    both in one transaction). Derived from the events, never a source of truth: a snapshot
    lost costs a longer fold, never a different state."""

    wallet_id: str
    position: int
    input_seq: int
    last_at: datetime | None
    """The latest instant among the events folded (``None``: none yet)."""
    state: bytes
    """``engine.states.encode_state``."""


class StoreError(Exception):
    """The store cannot be opened or used: an unknown URL, a server out of reach."""


class StoreUnavailable(StoreError):
    """The store's server is out of reach for now (a lost connection, a restart): the same
    call may succeed later. ``reason`` is a short label for metrics."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def safe_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


CORRECTION = b'{"type":"' + tag(AdjustRating).encode() + b'"'
"""How every stored ``AdjustRating`` input begins (the codec writes the tag first): a replay's
correction, which re-rating skips. A command is only left out by this test when it is one
(``read_inputs(corrections=False)``); one written otherwise is read, and skipped by type."""


INPUT_BATCH = 10_000
"""Inputs per query of ``read_inputs``."""


def correction_filter(corrections: bool, mark: str) -> tuple[str, tuple[bytes, ...]]:
    """What a query of inputs adds to its ``WHERE`` (and its arguments) so as to leave a
    replay's corrections out, unless ``corrections``."""
    if corrections:
        return "", ()
    return f" AND substr(payload, 1, {len(CORRECTION)}) <> {mark}", (CORRECTION,)


def inputs_query(
    wallet_id: str | None, after: int, corrections: bool, mark: str
) -> tuple[str, tuple[str | int | bytes, ...]]:
    """``read_inputs``' query of one batch and its arguments. A wallet's inputs are read in
    order of ``inputs_by_wallet`` (schema.py), not found among all and sorted per batch."""
    where = f"seq > {mark}"
    args: tuple[str | int | bytes, ...] = (after,)
    if wallet_id is not None:
        where += f" AND wallet_id = {mark}"
        args += (wallet_id,)
    extra, some = correction_filter(corrections, mark)
    sql = f"SELECT seq, key, wallet_id, at, payload FROM inputs WHERE {where}{extra}"
    return f"{sql} ORDER BY seq LIMIT {mark}", (*args, *some, INPUT_BATCH)


def counts_query(corrections: bool, mark: str) -> tuple[str, tuple[bytes, ...]]:
    """``input_counts``' query of every wallet's inputs, and its arguments."""
    extra, some = correction_filter(corrections, mark)
    return f"SELECT wallet_id, COUNT(*) FROM inputs WHERE 1 = 1{extra} GROUP BY wallet_id", some


def _of_types(types: Collection[str], mark: str) -> tuple[str, tuple[str, ...]]:
    """The condition that an event is of ``types`` (current names; each is matched under its
    former names too) and its arguments; no type matches nothing."""
    names = stored_names(*sorted(types))
    if not names:
        return "1 = 0", ()
    return f"type IN ({', '.join([mark] * len(names))})", names


def stream_query(
    columns: str,
    wallet_id: str,
    after: int,
    types: Collection[str] | None,
    whole_after: int | None,
    mark: str,
) -> tuple[str, tuple[str | int, ...]]:
    """``read_stream``'s query of ``columns`` and its arguments (``mark``: the driver's
    placeholder)."""
    where = f"wallet_id = {mark} AND position > {mark}"
    args: tuple[str | int, ...] = (wallet_id, after)
    if types is not None:
        typed, names = _of_types(types, mark)
        if whole_after is None:
            where += f" AND {typed}"
            args += names
        else:
            where += f" AND ({typed} OR position > {mark})"
            args += (*names, whole_after)
    return f"SELECT {columns} FROM events WHERE {where} ORDER BY version", args


def payloads_query(
    payload: str, after: int, batch: int, types: Collection[str] | None, mark: str
) -> tuple[str, tuple[str | int, ...]]:
    """``read_payloads``'s query (``payload``: the driver's expression for the payload
    column) and its arguments."""
    where = f"position > {mark}"
    args: tuple[str | int, ...] = (after,)
    if types is not None:
        typed, names = _of_types(types, mark)
        where += f" AND {typed}"
        args += names
    sql = f"SELECT position, {payload} FROM events WHERE {where} ORDER BY position LIMIT {mark}"
    return sql, (*args, batch)


class EventStore(Protocol):
    def append(
        self, events: Sequence[Event], inputs: Sequence[tuple[str, Cdr | Command]] = ()
    ) -> int:
        """Store events not already stored (by id) in one durable transaction, and the
        ``(wallet_id, input)`` pairs not already stored (by wallet and key). Returns how
        many events were new."""
        ...

    def read_all(self, after: int = 0, batch: int = 10_000) -> Iterator[list[StoredEvent]]:
        """Every event with ``position > after``, in position order, ``batch`` at a time."""
        ...

    def read_payloads(
        self, after: int = 0, batch: int = 10_000, types: Collection[str] | None = None
    ) -> Iterator[list[tuple[int, bytes]]]:
        """``(position, payload)`` of every event with ``position > after`` (of ``types``
        only, current names, when given), in position order, ``batch`` at a time: what a
        reader that parses the JSON itself needs."""
        ...

    def read_stream(
        self,
        wallet_id: str,
        after: int = 0,
        types: Collection[str] | None = None,
        whole_after: int | None = None,
    ) -> list[StoredEvent]:
        """One wallet's events (those with ``position > after``) in version order.

        With ``types`` (current names; an event stored under a former one is read too),
        only events of those types, except that every event with ``position >
        whole_after`` is read: what a replay compares and what its paying wallet folds
        after its snapshot, in one read (``stream_query``)."""
        ...

    def read_inputs(
        self, wallet_id: str | None = None, after: int = 0, corrections: bool = True
    ) -> Iterator[StoredInput]:
        """Stored inputs (of one wallet, or all; those stored after the ``after``-th), in the
        order they were first stored; without a replay's corrections (``AdjustRating``, see
        `CORRECTION`) when ``corrections`` is false, as re-rating reads them."""
        ...

    def marks(self) -> tuple[int, int]:
        """The last event position and the last input's sequence number, read together (a
        cut: the events up to one answer exactly the inputs up to the other)."""
        ...

    def put_snapshots(self, snapshots: Sequence[WalletSnapshot]) -> int:
        """Keep wallet snapshots; returns how many were new (one per wallet and position)."""
        ...

    def latest_snapshot(
        self, wallet_id: str, position: int | None = None, before: datetime | None = None
    ) -> WalletSnapshot | None:
        """The wallet's snapshot with the highest position (at most ``position``; with
        ``before``, only one whose ``last_at`` is earlier), or ``None``."""
        ...

    def wallets(self) -> list[str]:
        """Every wallet id with a stream, sorted."""
        ...

    def input_counts(
        self, after: Mapping[str, int] | None = None, corrections: bool = True
    ) -> dict[str, int]:
        """Each wallet's number of stored inputs (a wallet without any is left out), or,
        given ``after``, only the wallets it names, each counting the inputs stored after
        its ``after[wallet]``-th (an index count per wallet); without a replay's corrections
        when ``corrections`` is false: what a replay re-decides, so what it weighs its
        wallets by to share them out among jobs, and the total its progress counts to."""
        ...

    def position(self) -> int:
        """The position of the last stored event (0 when empty)."""
        ...

    def verify(self, unkeyed_until: int = 0) -> list[Problem]:
        """Walk every stream's chain; an empty list means the store is intact. With the
        store's chain key, unkeyed links after position ``unkeyed_until`` are problems."""
        ...

    def stats(self) -> StoreStats:
        """Counts of stored events, streams and inputs, and the last position."""
        ...

    def put_revision(self, revision: StoredRevision) -> bool:
        """Keep a catalog revision; ``True`` when it was new. Idempotent: the same revision
        again stores nothing; the same number with another digest is a ``StoreError`` (a
        revision number never names two catalogs)."""
        ...

    def revisions(self) -> list[StoredRevision]:
        """Every kept catalog revision, by number."""
        ...

    def close(self) -> None: ...


def revision_conflict(kept: StoredRevision, offered: StoredRevision) -> StoreError:
    return StoreError(
        f"catalog revision {kept.revision} is stored as {kept.name} (sha256 "
        f"{kept.digest[:12]}), not as {offered.name} (sha256 {offered.digest[:12]})"
    )


def append_decisions(store: EventStore, decisions: Iterable[Decision]) -> int:
    """The one way the store is fed (the sink, offline ``rate``, replay): each decision's
    events, and the input it was decided from (kept for replay), in one transaction.
    Returns how many events were new."""
    events: list[Event] = []
    inputs: list[tuple[str, Cdr | Command]] = []
    for decision in decisions:
        events.extend(decision.events)
        item = decision.item
        if item is not None:
            inputs.append((decision.wallet_id, item))
    return store.append(events, inputs)
