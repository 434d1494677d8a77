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
from itertools import groupby

import msgspec
from tqdm import tqdm

from ..domain import Catalog
from ..domain.decision import Decision
from ..domain.money import format_money
from ..store.base import EventStore, append_decisions
from .replay_shard import Part, Send, ShardReplay, combine, index_foreign


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


def _report(
    label: str,
    dry_run: bool,
    start: datetime | None,
    end: datetime | None,
    parts: Sequence[Part],
    appended: int,
) -> ReplayReport:
    tally = combine(parts)
    wallets = tuple(WalletImpact(w, *row) for w, row in sorted(tally.wallets.items()) if any(row))
    providers = tuple(ProviderImpact(p, *row) for p, row in sorted(tally.providers.items()))
    return ReplayReport(
        replay=label,
        dry_run=dry_run,
        start=start,
        end=end,
        wallets=wallets,
        providers=providers,
        rerated=sum(w.rerated for w in wallets),
        changed=sum(w.changed for w in wallets),
        amount=sum(w.amount for w in wallets),
        commands=sum(p.commands for p in parts),
        rejected=sum(p.rejected for p in parts),
        appended=appended,
        published=sum(p.published for p in parts),
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
    jobs: int = 1,
    opener: Callable[[], EventStore] | None = None,
    from_snapshots: bool = False,
) -> ReplayReport:
    """Re-rate the CDRs started in ``[start, end)`` (of ``wallet``, or of every wallet) with
    ``new_catalog`` and append the adjustments, or, given ``send``, publish them to their
    owners; ``dry_run`` does neither and reports the same impact. Running it again finds
    nothing more to adjust (once the owners' decisions are stored).

    With ``jobs`` above 1 and an ``opener`` (each job opens its own store with it), the
    wallets are shared out by partition, weighed by their inputs, among that many processes
    (``replay_jobs``); the adjustments, their ids and the report are the same whatever
    ``jobs``.

    With ``from_snapshots`` and a ``start``, each wallet is re-rated from its latest store
    snapshot taken before the window (``store snapshot``: the history before it stays as it
    was decided, its pools and tiers included) instead of from its first input; a wallet
    without one is re-rated from its first input as usual."""
    from .replay_jobs import run_jobs, shards

    if start is not None and end is not None and start >= end:
        raise ReplayError(
            f"the window is empty: {start.isoformat()} is not before {end.isoformat()}"
        )
    wallets = store.wallets()
    if wallet is not None:
        if wallet not in wallets:
            raise ReplayError(f"the store has no wallet {wallet!r}")
        wallets = [wallet]
    jobs = jobs if opener is not None and len(wallets) > 1 else 1  # a job opens its store
    sizes, total = _to_rerate(store, wallets, start if from_snapshots else None)
    bar = tqdm(total=total, unit=" inputs", disable=not progress, file=sys.stderr)
    foreign = index_foreign(store)

    def job(s: EventStore, tick: Callable[[int], object]) -> ShardReplay:
        return ShardReplay(s, new_catalog, label, dry_run, tick, send, foreign, from_snapshots)

    with bar:
        plan = shards(wallets, jobs, sizes=sizes if jobs > 1 else None)
        if plan.jobs == 1:
            run = job(store, bar.update)
            for index, wallet_id in enumerate(wallets):
                run.compare_wallet(index, wallet_id, start, end)
            run.settle(run.pending)
            parts = [run.part()]
        else:
            assert opener is not None
            parts = run_jobs(plan, opener, job, start, end, bar.update)
    appended = 0 if dry_run else _append(store, [d for part in parts for d in part.decided])
    return _report(label, dry_run, start, end, parts, appended)


def _to_rerate(
    store: EventStore, wallets: list[str], before: datetime | None
) -> tuple[dict[str, int], int]:
    """How many inputs each wallet re-rates (all of them, or, from snapshots before
    ``before``, those after its snapshot; never a replay's corrections, which re-rating
    skips), and their total, for the progress bar and the jobs' weights. One wallet, or
    wallets cut at a snapshot, are counted by an index count each; else every wallet's
    inputs in one pass."""
    cuts: dict[str, int] = {}
    for wallet_id in wallets if before is not None else ():
        base = store.latest_snapshot(wallet_id, before=before)
        if base is not None:
            cuts[wallet_id] = base.input_seq
    if cuts or len(wallets) == 1:
        sizes = store.input_counts({w: cuts.get(w, 0) for w in wallets}, corrections=False)
    else:
        sizes = store.input_counts(corrections=False)
    return sizes, sum(sizes.values())


def _append(store: EventStore, decided: list[tuple[int, int, Decision]]) -> int:
    """Append the decisions in run order, one transaction per rating wallet that decided
    anything (its no-op decisions' inputs with it)."""
    appended = 0
    decided.sort(key=lambda d: (d[0], d[1]))
    for _, group in groupby(decided, key=lambda d: d[0]):
        decisions = [d for _, _, d in group]
        if any(d.events for d in decisions):
            appended += append_decisions(store, decisions)
    return appended


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
