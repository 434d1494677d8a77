"""One job's share of a replay: re-rate some wallets, then settle the adjustments paid by
some wallets (``engine.offline.replay`` runs one share in process, ``replay_jobs`` several in
processes). The state a share keeps (paying wallets folded once, the tallies) is its own, so
shares run side by side and their ``Part``s add up to what one process would report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import msgspec

from ..codec import decode_event
from ..domain import AdjustRating, Catalog, Event, WalletState, initial_state, step
from ..domain.decision import Decision
from ..domain.events import CommandRejected, RatingAdjusted, UsageRated
from ..domain.replay import Comparison, compare
from ..flow import decide
from ..store.base import EventStore, StoredEvent, WalletSnapshot
from ..store.snapshots import fold, starting_state


class _Payer:
    """A paying wallet's current state and its latest instant, kept across the run."""

    __slots__ = ("last", "state")

    def __init__(self, state: WalletState, last: datetime | None) -> None:
        self.state = state
        self.last = last


class ReadStream(msgspec.Struct, frozen=True):
    """What a comparison read of a wallet's stored events (undecoded): the ``COMPARED``
    ones it compares, and every one after ``whole_after``, at least what the wallet's
    latest snapshot (``base``) leaves to fold when it pays."""

    base: WalletSnapshot | None
    whole_after: int
    rows: list[StoredEvent]
    decoded: dict[int, Event]
    """The ``COMPARED`` rows decoded, by position: a paying wallet's fold does not decode
    them again."""

    @classmethod
    def of(
        cls, base: WalletSnapshot | None, whole_after: int, rows: list[StoredEvent]
    ) -> ReadStream:
        """The rows read, with the ones a comparison reads decoded (and only those: the
        payer decodes the rest it folds)."""
        decoded = {r.position: decode_event(r.payload) for r in rows if r.type in COMPARED}
        return cls(base, whole_after, rows, decoded)


COMPARED = frozenset({"UsageRated", "RatingAdjusted"})
"""The stored events a comparison reads (``domain.replay.compare``); it ignores the rest."""

ADJUSTED = frozenset({"RatingAdjusted"})
"""What a replay reads of the whole log: the adjustments, some paid for other wallets."""

FOREIGN = b'"source_wallet"'
"""The key an adjustment paid for another wallet's CDR has in its JSON (and no other has)."""


class Tally:
    def __init__(self) -> None:
        self.wallets: dict[str, list[int]] = {}
        self.providers: dict[str, list[int]] = {}

    def wallet(self, wallet_id: str) -> list[int]:
        return _row(self.wallets, wallet_id, 4)

    def provider(self, provider: str) -> list[int]:
        return _row(self.providers, provider, 3)

    def count(self, c: Comparison) -> None:
        row = self.wallet(c.wallet_id)
        row[0] += 1
        if not c.commands:
            # Most CDRs: no payer's share moved, so each provider's total is as it was.
            for line in c.new:
                self.provider(line.provider)[0] += 1
            return
        row[1] += 1
        row[2] += c.amount
        old = {line.provider: line.amount for line in c.old}
        new = {line.provider: line.amount for line in c.new}
        for provider in list(new) + [p for p in old if p not in new]:
            p = self.provider(provider)
            p[0] += 1
            diff = new.get(provider, 0) - old.get(provider, 0)
            if diff:
                p[1] += 1
                p[2] += diff


def _row(rows: dict[str, list[int]], key: str, width: int) -> list[int]:
    """``key``'s row of counts, a new one of ``width`` zeros the first time (without
    ``setdefault``, which would build the zeros on every call)."""
    row = rows.get(key)
    if row is None:
        row = rows[key] = [0] * width
    return row


Send = Callable[[Sequence[AdjustRating]], int]
"""Publishes adjustments to their paying wallets' owners; returns how many were delivered."""

Tagged = tuple[int, int, AdjustRating]
"""An adjustment with its place in a one-process run: the rating wallet's position in the
run and the command's position among that wallet's adjustments. Settling in this order is
what makes a replay's result the same however many jobs share it."""


def index_foreign(store: EventStore) -> dict[str, list[Event]]:
    """Adjustments paid in one wallet for another wallet's CDRs (split billing), by the
    wallet that rated the CDR. The store reads only the ``RatingAdjusted`` events: the rest
    of the log, which a window's replay has no other reason to read, stays on disk."""
    foreign: dict[str, list[Event]] = {}
    for rows in store.read_payloads(types=ADJUSTED):
        for _, payload in rows:
            # Most adjustments are paid where their CDR was rated and carry no
            # ``source_wallet`` at all (defaults are omitted): those are not decoded.
            if payload.find(FOREIGN) < 0:
                continue
            e = decode_event(payload)
            if isinstance(e, RatingAdjusted) and e.source_wallet is not None:
                foreign.setdefault(e.source_wallet, []).append(e)
    return foreign


class ShardReplay:
    """One job's share of a replay, in two steps: ``compare_wallet`` re-rates the wallets
    it was given and collects their adjustments (``pending``); ``settle`` decides (offline)
    or publishes (stream) the adjustments whose paying wallet is this job's, in run order."""

    def __init__(
        self,
        store: EventStore,
        catalog: Catalog,
        label: str,
        dry_run: bool,
        tick: Callable[[int], object],
        send: Send | None = None,
        foreign: dict[str, list[Event]] | None = None,
        from_snapshots: bool = False,
    ) -> None:
        self.from_snapshots = from_snapshots
        """Re-rate each wallet from its latest store snapshot before the window (the history
        before it as decided), not from its first input."""
        self.send = send
        self.store = store
        self.catalog = catalog
        self.label = label
        self.dry_run = dry_run
        self.tick = tick
        self.payers: dict[str, _Payer] = {}
        self.foreign = foreign if foreign is not None else {}
        self.tally = Tally()
        self.pending: list[Tagged] = []
        self.decided: list[tuple[int, int, Decision]] = []
        self.commands = self.rejected = self.published = 0

    def payer(self, wallet_id: str, stored: ReadStream | None = None) -> _Payer:
        """The paying wallet as it stands, once per run: its latest store snapshot and the
        events after it, taken from ``stored`` (which the caller has at hand) when it holds
        them all, else read. In the stream, only its latest instant is needed (the owner
        has the state it decides with)."""
        found = self.payers.get(wallet_id)
        if found is not None:
            return found
        base = self.store.latest_snapshot(wallet_id) if stored is None else stored.base
        after = 0 if base is None else base.position
        decoded: dict[int, Event] = {}
        if stored is not None and stored.whole_after <= after:
            tail = [r for r in stored.rows if r.position > after]
            decoded = stored.decoded
        else:
            tail = self.store.read_stream(wallet_id, after)
        instants = [r.at for r in tail]
        if self.send is not None:
            state = initial_state(wallet_id)  # the stream needs only the instants
        else:
            state = fold(starting_state(wallet_id, base), tail, decoded)
        if base is not None and base.last_at is not None:
            instants.append(base.last_at)
        found = self.payers[wallet_id] = _Payer(state, max(instants, default=None))
        return found

    def rerate(self, wallet_id: str, base: WalletSnapshot | None = None) -> list[Event]:
        """The ``UsageRated`` events of re-rating the wallet's inputs with the new catalog,
        from its first input, or from a snapshot's state and the inputs after it."""
        state = starting_state(wallet_id, base)
        out: list[Event] = []
        n = 0
        after = 0 if base is None else base.input_seq
        # Corrections are not usage: the new rating starts from scratch, and the store
        # leaves them out unread (a replay stores one per CDR it changed).
        for stored in self.store.read_inputs(wallet_id, after, corrections=False):
            n += 1
            if isinstance(stored.item, AdjustRating):
                continue  # one the store could not tell apart (see store.base.CORRECTION)
            events, state = step(state, stored.item, self.catalog)  # no Decision: only events
            out.extend(e for e in events if isinstance(e, UsageRated))
            if n % 4096 == 0:
                self.tick(4096)
        self.tick(n % 4096)
        return out

    def compare_wallet(
        self, index: int, wallet_id: str, start: datetime | None, end: datetime | None
    ) -> None:
        """Re-rate the wallet that is ``index``-th in the run and keep its adjustments. From a
        snapshot, the events it holds are not read: they answer inputs all before the window
        (its latest instant is), so they rate no CDR compared."""
        base = None
        if self.from_snapshots and start is not None:
            base = self.store.latest_snapshot(wallet_id, before=start)
        after = 0 if base is None else base.position
        # One read: the events compared, and all those the wallet folds if it pays.
        latest = self.store.latest_snapshot(wallet_id)
        whole_after = max(after, 0 if latest is None else latest.position)
        rows = self.store.read_stream(wallet_id, after, COMPARED, whole_after)
        stored = ReadStream.of(latest, whole_after, rows)
        rated = list(stored.decoded.values())
        rated.extend(self.foreign.get(wallet_id, ()))
        rerated = self.rerate(wallet_id, base)
        comparisons = compare(wallet_id, rated, rerated, self.label, start, end)
        position = 0
        for c in comparisons:
            self.tally.count(c)
            for cmd in c.commands:
                self.pending.append((index, position, cmd))
                position += 1
                if cmd.wallet_id == wallet_id:
                    # folded now, while its events are at hand
                    self.payer(wallet_id, stored)

    def settle(self, commands: Sequence[Tagged]) -> None:
        """Decide (offline) or send (stream) ``commands``, all paid by this job's wallets, in
        run order, each at its paying wallet's present."""
        outgoing: list[AdjustRating] = []
        for index, position, cmd in sorted(commands, key=lambda t: (t[0], t[1])):
            payer = self.payer(cmd.wallet_id)
            at = cmd.at if payer.last is None else max(payer.last, cmd.at)
            cmd = msgspec.structs.replace(cmd, at=at)
            if self.send is not None:
                outgoing.append(cmd)
                # What the owner will move, unless it rejects the command.
                self.tally.wallet(cmd.wallet_id)[3] += cmd.amount
                continue
            made, payer.state = decide(payer.state, cmd.wallet_id, cmd, self.catalog)
            payer.last = max([at, *(e.at for e in made.events)])
            self.commands += 1
            paid = self.tally.wallet(cmd.wallet_id)
            for e in made.events:
                if isinstance(e, CommandRejected):
                    self.rejected += 1
                elif isinstance(e, RatingAdjusted):
                    paid[3] += e.amount
            if not self.dry_run:
                self.decided.append((index, position, made))
        if outgoing:
            self.commands += len(outgoing)
            if not self.dry_run and self.send is not None:
                self.published += self.send(outgoing)

    def part(self) -> Part:
        """What the parent needs of this job once it has settled."""
        return Part(
            self.tally.wallets,
            self.tally.providers,
            self.commands,
            self.rejected,
            self.published,
            self.decided,
        )


class Part(msgspec.Struct):
    """One job's result: its tallies and counts, and its decisions tagged with their run
    order (appended by the parent, so the store gets them in the one-process order)."""

    wallets: dict[str, list[int]]
    providers: dict[str, list[int]]
    commands: int
    rejected: int
    published: int
    decided: list[tuple[int, int, Decision]]


def combine(parts: Sequence[Part]) -> Tally:
    tally = Tally()
    for part in parts:
        for key, row in part.wallets.items():
            mine = tally.wallet(key)
            mine[:] = [a + b for a, b in zip(mine, row, strict=True)]
        for key, row in part.providers.items():
            mine = tally.provider(key)
            mine[:] = [a + b for a, b in zip(mine, row, strict=True)]
    return tally
