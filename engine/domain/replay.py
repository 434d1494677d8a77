"""Replay: what a CDR was charged against what another catalog charges for it.

Pure. ``compare`` takes a wallet's rating history (its ``UsageRated`` events and every
``RatingAdjusted`` correcting them, in whichever wallet the money moved) and the events of
re-rating the same inputs with the new catalog, and returns one ``Comparison`` per CDR, with
the ``AdjustRating`` commands that bring what was charged to what the new catalog says.

A command's id is ``adj:<CDR key>:<k>``, ``k`` counting the CDR's adjustments so far, so a
replay run twice finds nothing the second time, and two replays racing on the same history
send the same ids, which every wallet recognises as one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from .commands import AdjustRating
from .events import Event, RatingAdjusted, SplitLine, UsageRated
from .ids import adjusted_cdr_key, adjustment_id, input_key


def corrected_key(event: RatingAdjusted) -> str:
    """The key of the CDR an adjustment corrects (it is part of the command's id)."""
    return adjusted_cdr_key(event.id)


def rating_wallet(event: RatingAdjusted) -> str:
    """The wallet whose ``UsageRated`` an adjustment corrects."""
    return event.source_wallet or event.wallet_id


class _Money:
    """What one wallet pays for one CDR: amount, charged volume and revenue lines."""

    __slots__ = ("amount", "lines", "volume")

    def __init__(self) -> None:
        self.amount = 0
        self.volume = 0
        self.lines: dict[str, int] = {}

    def add(self, amount: int, volume: int, lines: tuple[SplitLine, ...]) -> None:
        self.amount += amount
        self.volume += volume
        _summed(lines, self.lines)


class _Cdr:
    """One CDR's history: per paying wallet, what it costs now; and the new rating."""

    __slots__ = ("adjusted", "new", "new_payer", "old", "rated", "started_at")

    def __init__(self) -> None:
        self.old: dict[str, _Money] = {}
        self.new: _Money | None = None
        self.new_payer = ""
        self.rated: UsageRated | None = None
        self.adjusted = 0
        self.started_at: datetime | None = None

    def paid_by(self, wallet_id: str) -> _Money:
        money = self.old.get(wallet_id)
        if money is None:
            money = self.old[wallet_id] = _Money()
        return money


class Comparison(msgspec.Struct, frozen=True, gc=False):
    """One CDR compared: revenue per provider as charged so far (``old``, after earlier
    adjustments) and by the new catalog (``new``), and the commands that settle the difference.
    """

    wallet_id: str
    cdr_key: str
    cdr_id: str
    started_at: datetime
    old: tuple[SplitLine, ...]
    new: tuple[SplitLine, ...]
    commands: tuple[AdjustRating, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.commands)

    @property
    def amount(self) -> int:
        """The difference, new minus old."""
        return sum(c.amount for c in self.commands)


def _within(at: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or at >= start) and (end is None or at < end)


def _lines(amounts: dict[str, int]) -> tuple[SplitLine, ...]:
    return tuple([SplitLine(p, a) for p, a in amounts.items() if a])


def compare(
    wallet_id: str,
    rated: Iterable[Event],
    rerated: Iterable[Event],
    replay: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Comparison]:
    """Every CDR of ``wallet_id`` started in ``[start, end)`` that either rating priced:
    ``rated`` holds its events as stored and the adjustments other wallets paid for its CDRs
    (the rest is ignored), ``rerated`` the events of its inputs re-run with the new catalog. A
    command goes to each wallet whose share changes (the payer, ``source_wallet`` set when it
    is not ``wallet_id``), at the CDR's start, which the caller moves to the payer's present."""
    # Each CDR's events, by its key, in the order the CDRs first appear.
    history: dict[str, list[UsageRated | RatingAdjusted]] = {}
    for e in rated:
        if isinstance(e, UsageRated):
            if e.wallet_id != wallet_id:
                continue
            key = input_key(e.id)
        elif isinstance(e, RatingAdjusted) and rating_wallet(e) == wallet_id:
            key = corrected_key(e)
        else:
            continue
        events = history.get(key)
        if events is None:
            history[key] = [e]
        else:
            events.append(e)
    fresh: dict[str, list[UsageRated]] = {}
    for e in rerated:
        if isinstance(e, UsageRated) and e.wallet_id == wallet_id:
            key = input_key(e.id)
            rerating = fresh.get(key)
            if rerating is None:
                fresh[key] = [e]
                history.setdefault(key, [])
            else:
                rerating.append(e)
    out = []
    none: list[UsageRated] = []
    for key, before in history.items():
        after = fresh.get(key, none)
        named = after[-1] if after else _last_rated(before)
        if named is None or not _within(named.at, start, end):
            continue  # only adjustments of a CDR no rating priced: nothing to compare
        if len(before) == 1 and len(after) == 1:
            # Most CDRs: rated once, and now the same payer, amount and lines: nothing to settle.
            was = before[0]
            if (
                type(was) is UsageRated
                and was.payer == named.payer
                and was.amount == named.amount
                and was.splits == named.splits
            ):
                lines = _lines(_summed(named.splits))
                out.append(Comparison(wallet_id, key, named.cdr_id, named.at, lines, lines))
                continue
        out.append(_compare(wallet_id, key, _cdr(before, after), replay))
    return out


def _last_rated(events: list[UsageRated | RatingAdjusted]) -> UsageRated | None:
    for e in reversed(events):
        if isinstance(e, UsageRated):
            return e
    return None


def _summed(lines: tuple[SplitLine, ...], amounts: dict[str, int] | None = None) -> dict[str, int]:
    """Each provider's total of ``lines``, added to ``amounts`` when given."""
    amounts = {} if amounts is None else amounts
    for line in lines:
        amounts[line.provider] = amounts.get(line.provider, 0) + line.amount
    return amounts


def _cdr(before: list[UsageRated | RatingAdjusted], after: list[UsageRated]) -> _Cdr:
    """One CDR's history: what each wallet paid for it so far, and the new rating."""
    c = _Cdr()
    for e in before:
        if isinstance(e, UsageRated):
            c.rated, c.started_at = e, e.at
            c.paid_by(e.payer).add(e.amount, e.charged_volume, e.splits)
        else:
            c.adjusted += 1
            c.paid_by(e.wallet_id).add(e.amount, e.charged_volume, e.splits)
    for e in after:
        if c.new is None:
            c.new, c.new_payer = _Money(), e.payer
        c.new.add(e.amount, e.charged_volume, e.splits)
        # the new rating names the CDR in the commands (zone, plan version) when it has one
        c.rated, c.started_at = e, e.at
    return c


def _compare(wallet_id: str, key: str, c: _Cdr, replay: str) -> Comparison:
    assert c.rated is not None and c.started_at is not None
    if c.new is not None and len(c.old) == 1:
        # Most CDRs: one wallet paid, the same one pays, and each provider's share is as it
        # was, so there is nothing to settle.
        before = c.old.get(c.new_payer)
        if before is not None and before.amount == c.new.amount and before.lines == c.new.lines:
            old, new = _lines(before.lines), _lines(c.new.lines)
            return Comparison(wallet_id, key, c.rated.cdr_id, c.started_at, old, new)
    old_total: dict[str, int] = {}
    for money in c.old.values():
        for provider, amount in money.lines.items():
            old_total[provider] = old_total.get(provider, 0) + amount
    new_total = dict(c.new.lines) if c.new is not None else {}
    payers = list(c.old)
    if c.new is not None and c.new_payer not in c.old:
        payers.append(c.new_payer)
    commands = []
    k = c.adjusted
    for payer in payers:
        before = c.old.get(payer) or _Money()
        after = c.new if c.new is not None and payer == c.new_payer else _Money()
        providers = list(after.lines) + [p for p in before.lines if p not in after.lines]
        lines = tuple(
            (p, after.lines.get(p, 0) - before.lines.get(p, 0))
            for p in providers
            if after.lines.get(p, 0) != before.lines.get(p, 0)
        )
        amount = after.amount - before.amount
        if not amount and not lines:
            continue
        k += 1
        r = c.rated
        commands.append(
            AdjustRating(
                command_id=adjustment_id(key, k),
                wallet_id=payer,
                at=c.started_at,
                cdr_id=r.cdr_id,
                iccid=r.iccid,
                service=r.service,
                zone=r.zone,
                replay=replay,
                amount=amount,
                charged_volume=after.volume - before.volume,
                plan_version=r.plan_version,
                splits=lines,
                source_wallet=None if payer == wallet_id else wallet_id,
            )
        )
    return Comparison(
        wallet_id,
        key,
        c.rated.cdr_id,
        c.started_at,
        _lines(old_total),
        _lines(new_total),
        tuple(commands),
    )
