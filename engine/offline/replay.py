"""``rating-engine replay``: re-rate stored history with another catalog and settle the difference.

For each wallet, its stored inputs (CDRs and commands, routed charges included, in stored
order) run again from the initial state through ``step`` with the new catalog, so pools and
tiers count as they would have. The CDRs started in ``[start, end)`` are compared with what
was charged for them (``UsageRated`` plus earlier ``RatingAdjusted``), and each difference
becomes an ``AdjustRating`` command to the paying wallet, decided on the wallet's current
state (folded from its stored events) at its present instant, and appended to the store with
its events. History is never rewritten: the money moves now.

Two ways to settle, chosen by whoever calls ``replay``:
- **offline** (no running worker): the adjustments are decided here and appended to the store;
- **through the owner** (a streaming deployment): ``send`` publishes each wallet's
  ``AdjustRating`` commands to ``wallet.commands``; the wallet's owner decides them like any
  command and the sink stores the result, so the live state, the store and the projections
  move together. Nothing is appended here: the store has one writer per wallet.
The commands' ids are a function of the CDR and of the difference's position, so a replay
run again (or a publish retried) sends nothing the owner has not seen: it ignores a command
id decided before.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import datetime

import msgspec
from tqdm import tqdm

from ..codec import decode_event
from ..domain import AdjustRating, Catalog, Event, WalletState, initial_state
from ..domain.decision import Decision
from ..domain.events import CommandRejected, RatingAdjusted, UsageRated
from ..domain.evolve import evolve
from ..domain.money import format_money
from ..domain.replay import Comparison, compare
from ..flow import decide
from ..store.base import EventStore, append_decisions


class WalletImpact(msgspec.Struct, frozen=True):
    """``rerated`` CDRs of this wallet compared, ``changed`` of them, their ``amount``
    difference (new minus old, micro-units); ``paid``: what the adjustments moved in this
    wallet as the payer (positive charged, negative refunded)."""

    wallet_id: str
    rerated: int
    changed: int
    amount: int
    paid: int


class ProviderImpact(msgspec.Struct, frozen=True):
    """CDRs with a revenue line of this provider under either rating, those whose line
    changed, and the revenue difference."""

    provider: str
    rerated: int
    changed: int
    amount: int


class ReplayReport(msgspec.Struct, frozen=True):
    replay: str
    dry_run: bool
    start: datetime | None
    end: datetime | None
    wallets: tuple[WalletImpact, ...]
    providers: tuple[ProviderImpact, ...]
    rerated: int
    changed: int
    amount: int
    commands: int
    """Adjustments decided (sent to the paying wallets)."""
    rejected: int
    """Adjustments a paying wallet rejected (e.g. a wallet the new catalog does not know)."""
    appended: int
    """Events appended to the store (0 on a dry run)."""
    published: int = 0
    """Adjustments sent to their owners through ``wallet.commands`` (streaming deployments)."""


class _Payer:
    """A paying wallet's current state and its latest instant, kept across the run."""

    __slots__ = ("last", "state")

    def __init__(self, state: WalletState, last: datetime | None) -> None:
        self.state = state
        self.last = last


class _Tally:
    def __init__(self) -> None:
        self.wallets: dict[str, list[int]] = {}
        self.providers: dict[str, list[int]] = {}

    def wallet(self, wallet_id: str) -> list[int]:
        return self.wallets.setdefault(wallet_id, [0, 0, 0, 0])

    def count(self, c: Comparison) -> None:
        row = self.wallet(c.wallet_id)
        row[0] += 1
        if c.changed:
            row[1] += 1
            row[2] += c.amount
        old = {line.provider: line.amount for line in c.old}
        new = {line.provider: line.amount for line in c.new}
        for provider in list(new) + [p for p in old if p not in new]:
            p = self.providers.setdefault(provider, [0, 0, 0])
            p[0] += 1
            diff = new.get(provider, 0) - old.get(provider, 0)
            if diff:
                p[1] += 1
                p[2] += diff


Send = Callable[[Sequence[AdjustRating]], int]
"""Publishes adjustments to their paying wallets' owners; returns how many were delivered."""


class _Replay:
    def __init__(
        self,
        store: EventStore,
        catalog: Catalog,
        label: str,
        dry_run: bool,
        bar: tqdm,
        send: Send | None = None,
    ) -> None:
        self.send = send
        self.store = store
        self.catalog = catalog
        self.label = label
        self.dry_run = dry_run
        self.bar = bar
        self.payers: dict[str, _Payer] = {}
        self.foreign: dict[str, list[Event]] = {}
        self.tally = _Tally()
        self.commands = self.rejected = self.appended = self.published = 0

    def index_foreign(self) -> None:
        """Adjustments paid in one wallet for another wallet's CDRs (split billing)."""
        for rows in self.store.read_all():
            for r in rows:
                if r.type == "RatingAdjusted":
                    e = decode_event(r.payload)
                    if isinstance(e, RatingAdjusted) and e.source_wallet is not None:
                        self.foreign.setdefault(e.source_wallet, []).append(e)

    def payer(self, wallet_id: str, stored: list[Event] | None = None) -> _Payer:
        """The paying wallet as it stands, folded from its stored events once per run (only
        its latest instant when its owner decides: the owner has the state)."""
        found = self.payers.get(wallet_id)
        if found is None:
            if stored is None:
                stored = [decode_event(r.payload) for r in self.store.read_stream(wallet_id)]
            state = initial_state(wallet_id)
            if self.send is None:
                for e in stored:
                    state = evolve(state, e)
            last = max((e.at for e in stored), default=None)
            found = self.payers[wallet_id] = _Payer(state, last)
        return found

    def rerate(self, wallet_id: str) -> list[Event]:
        state = initial_state(wallet_id)
        out: list[Event] = []
        n = 0
        for stored in self.store.read_inputs(wallet_id):
            n += 1
            if isinstance(stored.item, AdjustRating):
                continue  # corrections are not usage: the new rating starts from scratch
            made, state = decide(state, wallet_id, stored.item, self.catalog)
            out.extend(e for e in made.events if isinstance(e, UsageRated))
            if n % 4096 == 0:
                self.bar.update(4096)
        self.bar.update(n % 4096)
        return out

    def wallet(self, wallet_id: str, start: datetime | None, end: datetime | None) -> None:
        stored = [decode_event(r.payload) for r in self.store.read_stream(wallet_id)]
        rated = [*stored, *self.foreign.get(wallet_id, ())]
        comparisons = compare(wallet_id, rated, self.rerate(wallet_id), self.label, start, end)
        decisions: list[Decision] = []
        outgoing: list[AdjustRating] = []
        for c in comparisons:
            self.tally.count(c)
            for cmd in c.commands:
                payer = self.payer(cmd.wallet_id, stored if cmd.wallet_id == wallet_id else None)
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
                decisions.append(made)
        if any(d.events for d in decisions) and not self.dry_run:
            self.appended += append_decisions(self.store, decisions)
        if outgoing:
            self.commands += len(outgoing)
            if not self.dry_run and self.send is not None:
                self.published += self.send(outgoing)

    def report(self, start: datetime | None, end: datetime | None) -> ReplayReport:
        wallets = tuple(
            WalletImpact(w, *row) for w, row in sorted(self.tally.wallets.items()) if any(row)
        )
        providers = tuple(
            ProviderImpact(p, *row) for p, row in sorted(self.tally.providers.items())
        )
        return ReplayReport(
            replay=self.label,
            dry_run=self.dry_run,
            start=start,
            end=end,
            wallets=wallets,
            providers=providers,
            rerated=sum(w.rerated for w in wallets),
            changed=sum(w.changed for w in wallets),
            amount=sum(w.amount for w in wallets),
            commands=self.commands,
            rejected=self.rejected,
            appended=self.appended,
            published=self.published,
        )


class ReplayError(ValueError):
    """A replay that cannot run as asked (an unknown wallet, an empty window)."""


def replay(
    store: EventStore,
    new_catalog: Catalog,
    start: datetime | None = None,
    end: datetime | None = None,
    wallet: str | None = None,
    dry_run: bool = False,
    progress: bool = False,
    label: str = "replay",
    send: Send | None = None,
) -> ReplayReport:
    """Re-rate the CDRs started in ``[start, end)`` (of ``wallet``, or of every wallet) with
    ``new_catalog`` and append the adjustments, or, given ``send``, publish them to their
    owners; ``dry_run`` does neither and reports the same impact. Running it again finds
    nothing more to adjust (once the owners' decisions are stored)."""
    if start is not None and end is not None and start >= end:
        raise ReplayError(
            f"the window is empty: {start.isoformat()} is not before {end.isoformat()}"
        )
    wallets = store.wallets()
    if wallet is not None:
        if wallet not in wallets:
            raise ReplayError(f"the store has no wallet {wallet!r}")
        wallets = [wallet]
    total = store.stats().inputs if wallet is None else None
    bar = tqdm(total=total, unit=" inputs", disable=not progress, file=sys.stderr)
    with bar:
        run = _Replay(store, new_catalog, label, dry_run, bar, send)
        run.index_foreign()
        for wallet_id in wallets:
            run.wallet(wallet_id, start, end)
    return run.report(start, end)


def render(report: ReplayReport) -> str:
    """The impact per wallet and per provider, as tables."""
    window = (
        f"{report.start.isoformat() if report.start else 'the beginning'} to "
        f"{report.end.isoformat() if report.end else 'the end'}"
    )
    if report.dry_run:
        head = "dry run: nothing appended or sent"
    elif report.published:
        head = f"{report.published:,} adjustments sent to their wallets' owners"
    else:
        head = f"{report.appended:,} events appended"
    lines = [f"replay {report.replay}: CDRs started from {window}; {head}", ""]
    lines.append(f"{'wallet':<16} {'re-rated':>10} {'changed':>10} {'difference':>16} {'paid':>16}")
    for w in report.wallets:
        lines.append(
            f"{w.wallet_id:<16} {w.rerated:>10,} {w.changed:>10,} "
            f"{format_money(w.amount):>16} {format_money(w.paid):>16}"
        )
    lines.append(
        f"{'total':<16} {report.rerated:>10,} {report.changed:>10,} "
        f"{format_money(report.amount):>16} {format_money(sum(w.paid for w in report.wallets)):>16}"
    )
    lines += ["", f"{'provider':<16} {'re-rated':>10} {'changed':>10} {'difference':>16}"]
    for p in report.providers:
        lines.append(
            f"{p.provider:<16} {p.rerated:>10,} {p.changed:>10,} {format_money(p.amount):>16}"
        )
    tail = f"{report.commands:,} adjustments"
    if report.rejected:
        tail += f", {report.rejected:,} rejected by the paying wallet"
    lines += ["", tail]
    return "\n".join(lines)
