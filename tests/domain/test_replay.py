"""Replay in the core: ``AdjustRating`` decided into ``RatingAdjusted``, and the pure comparison
of a wallet's history with a re-rating under another catalog."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.codec import decode_event, encode
from engine.domain import AdjustRating, Catalog, Cdr, Event, fold, initial_state, step
from engine.domain.catalog import Plan, PlanVersion
from engine.domain.events import (
    Charged,
    CommandRejected,
    DebtWrittenOff,
    GrantAdded,
    GrantExpired,
    RatingAdjusted,
    SimsBarred,
    SplitLine,
    ThresholdCrossed,
    UsageRated,
    WalletOpened,
    WalletSuspended,
)
from engine.domain.ids import adjustment_id, input_key
from engine.domain.replay import (
    Comparison,
    _Cdr,
    _compare,
    _Money,
    compare,
    corrected_key,
    rating_wallet,
)
from engine.domain.state import WalletState
from engine.flow import follow_ups, route
from engine.offline.pipeline import Pipeline

from .builders import (
    MB,
    T0,
    Input,
    Wallets,
    catalog,
    cdr,
    dt,
    one,
    opening,
    plan,
    rate,
    types,
    wallet,
)
from .strategies import catalogs, data_rates, inputs, shares, weights

FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def adjust(
    command_id: str,
    amount: int,
    lines: tuple[tuple[str, int], ...] | None = None,
    *,
    at: int = T0 + 60,
    wallet_id: str = "w1",
    source: str | None = None,
) -> AdjustRating:
    return AdjustRating(
        command_id=command_id,
        wallet_id=wallet_id,
        at=dt(at),
        cdr_id="c1",
        iccid="8900000000000000001",
        service="data",
        zone="EU",
        replay="test",
        amount=amount,
        charged_volume=0,
        plan_version=1,
        splits=((("op", amount),) if lines is None else lines),
        source_wallet=source,
    )


# -- deciding an adjustment ------------------------------------------------------------


def test_a_positive_difference_is_debited_in_burn_order_then_from_the_overdraft() -> None:
    w = Wallets(
        catalog(wallets=[wallet(opening=[opening("1"), opening("2", priority=10)], overdraft="1")])
    )
    w.given(cdr("c1", 0))  # opens the wallet
    events = w.when(adjust("a1", 3_500_000, (("op", 3_000_000), ("platform", 500_000))))
    adjusted = one(events, RatingAdjusted)
    assert [(d.grant_id, d.amount) for d in adjusted.debits] == [
        ("open:w1/1", 2_000_000),
        ("open:w1/0", 1_000_000),
    ]
    assert (adjusted.overdraft, adjusted.uncollected, adjusted.credit) == (500_000, 0, None)
    assert adjusted.splits == (SplitLine("op", 3_000_000), SplitLine("platform", 500_000))
    assert adjusted.id == "cmd:a1#0"
    assert w.balance == -500_000


def test_a_positive_difference_crosses_thresholds_and_suspends_like_any_charge() -> None:
    w = Wallets(
        catalog(
            wallets=[
                wallet(opening=[opening("1")], thresholds=["0.5"], suspend_at=0, overdraft="5")
            ]
        )
    )
    w.given(cdr("c1", 0))
    events = w.when(adjust("a1", 1_200_000))
    assert types(events) == ["RatingAdjusted", "ThresholdCrossed", "WalletSuspended", "SimsBarred"]
    assert one(events, ThresholdCrossed).balance == -200_000
    assert one(events, WalletSuspended).balance == -200_000
    assert one(events, SimsBarred).iccids == ("8900000000000000001",)
    assert one(events, RatingAdjusted).uncollected == 0


def test_beyond_the_overdraft_a_positive_difference_is_owed() -> None:
    w = Wallets(catalog(wallets=[wallet(opening=[opening("1")], overdraft="0.5")]))
    w.given(cdr("c1", 0))
    adjusted = one(w.when(adjust("a1", 2_000_000)), RatingAdjusted)
    assert (sum(d.amount for d in adjusted.debits), adjusted.overdraft, adjusted.uncollected) == (
        1_000_000,
        1_000_000,
        0,
    )
    assert (w.state.debt, w.state.uncollected) == (1_000_000, 0)


def test_a_negative_difference_is_a_refund_grant_that_repays_the_overdraft_first() -> None:
    cat = catalog(
        plans=[plan(rates={"data": {"EU": rate("1", MB)}})],
        wallets=[wallet(opening=[opening("1")], overdraft="5")],
    )
    w = Wallets(cat)
    w.given(cdr("c1", 3 * MB))  # 3 EUR: 1 from the grant, 2 of overdraft
    assert (w.state.credit, w.state.debt) == (0, 2_000_000)
    events = w.when(adjust("a1", -2_500_000, (("op", -3_000_000), ("platform", 500_000))))
    adjusted = one(events, RatingAdjusted)
    assert adjusted.credit is not None
    assert (adjusted.credit.kind, adjusted.credit.amount, adjusted.credit.priority) == (
        "refund",
        2_500_000,
        30,
    )
    assert adjusted.credit.grant_id == adjusted.id
    assert (adjusted.debt_repaid, adjusted.debits, adjusted.overdraft) == (2_000_000, (), 0)
    assert (w.state.credit, w.state.debt, w.balance) == (500_000, 0, 500_000)
    assert [(g.id, g.remaining, g.kind) for g in w.state.grants] == [
        ("cmd:a1#0", 500_000, "refund")
    ]


def test_a_changed_split_alone_moves_no_money() -> None:
    w = Wallets(catalog())
    w.given(cdr("c1", 0))
    before = w.balance
    adjusted = one(w.when(adjust("a1", 0, (("op", -700), ("reseller", 700)))), RatingAdjusted)
    assert (adjusted.amount, adjusted.debits, adjusted.credit) == (0, (), None)
    assert adjusted.splits == (SplitLine("op", -700), SplitLine("reseller", 700))
    assert w.balance == before


def test_split_lines_that_do_not_sum_to_the_amount_are_rejected() -> None:
    w = Wallets(catalog())
    rejected = one(w.when(adjust("a1", 10, (("op", 7),))), CommandRejected)
    assert (rejected.reason, rejected.command) == ("invalid_amount", "AdjustRating")
    # a rejected command is not remembered: the corrected one under the same id is decided
    assert types(w.when(adjust("a1", 10, (("op", 10),)))) == ["WalletOpened", "RatingAdjusted"]


@pytest.mark.parametrize("volume", [(1 << 64) - 1, -(1 << 63) + 1])
def test_a_volume_difference_beyond_any_record_is_rejected(volume: int) -> None:
    """No CDR's volume is over its service's limit, so no difference of two can be either;
    one that is would be stored as an event no 64-bit column holds."""
    w = Wallets(catalog())
    cmd = msgspec.structs.replace(adjust("a1", 10), charged_volume=volume)
    rejected = one(w.when(cmd), CommandRejected)
    assert (rejected.reason, rejected.command) == ("volume_over_limit", "AdjustRating")


def test_a_retried_adjustment_is_a_no_op() -> None:
    w = Wallets(catalog())
    w.given(cdr("c1", 0), adjust("a1", 1_000_000), adjust("a2", -250_000))
    before = w.state
    assert w.when(adjust("a1", 1_000_000)) == []
    assert w.when(adjust("a2", -250_000)) == []
    assert w.state == before
    # also after a restart: the state folded from stored (encoded) events remembers them
    stored = [decode_event(encode(e)) for e in w.history]
    assert stored == w.history
    restarted = fold(initial_state("w1"), stored)
    assert step(restarted, adjust("a1", 1_000_000), w.catalog) == ([], restarted)


def test_an_adjustment_expires_what_is_due_at_its_instant_first() -> None:
    w = Wallets(catalog(wallets=[wallet(opening=[opening("1", expires_at=T0 + 30), opening("5")])]))
    w.given(cdr("c1", 0))
    events = w.when(adjust("a1", 1_000_000, at=T0 + 60))
    assert types(events) == ["GrantExpired", "RatingAdjusted"]
    assert [d.grant_id for d in one(events, RatingAdjusted).debits] == ["open:w1/1"]


# -- comparing histories ---------------------------------------------------------------


def _corp_catalog(price: str, payer: bool = True) -> Catalog:
    from engine.domain.catalog import Filter

    filters = [Filter("corp", apns=("corp",), payer="w2")] if payer else []
    return catalog(
        plans=[plan(rates={"data": {"EU": rate(price, MB)}}, filters=filters)],
        wallets=[wallet("w1"), wallet("w2")],
    )


def _rated(
    cat: Catalog, items: list[Input]
) -> tuple[Pipeline, dict[str, list[Event]], dict[str, list[Input]]]:
    """Events and inputs per wallet, as the event store keeps them (routed charges included;
    a record that reached no wallet is nowhere)."""
    pipeline = Pipeline(cat)
    history: dict[str, list[Event]] = {}
    inputs: dict[str, list[Input]] = {}
    for item in items:
        target = item.wallet_id if not isinstance(item, Cdr) else route(cat, pipeline.routes, item)
        out = pipeline.feed(item)
        if not isinstance(out, list):
            continue
        assert isinstance(target, str)
        inputs.setdefault(target, []).append(item)
        for charge in follow_ups(out).charges:
            inputs.setdefault(charge.wallet_id, []).append(charge)
        for e in out:
            history.setdefault(e.wallet_id, []).append(e)
    return pipeline, history, inputs


def _rerun(cat: Catalog, wallet_id: str, items: list[Input]) -> list[Event]:
    state, out = initial_state(wallet_id), []
    for item in items:
        events, state = step(state, item, cat)
        out.extend(events)
    return out


def test_a_cheaper_price_gives_one_refund_per_cdr_with_revenue_lines() -> None:
    items: list[Input] = [cdr("c1", 2 * MB), cdr("c2", 0, at=T0 + 1), cdr("c3", MB, at=T0 + 2)]
    _, history, _ = _rated(_corp_catalog("1"), items)
    rerated = _rerun(_corp_catalog("0.5"), "w1", items)
    comparisons = compare("w1", history["w1"], rerated, "r1")
    assert [(c.cdr_key, c.changed, c.amount) for c in comparisons] == [
        ("cdr:c1", True, -1_000_000),
        ("cdr:c2", False, 0),
        ("cdr:c3", True, -500_000),
    ]
    cmd = comparisons[0].commands[0]
    assert (cmd.command_id, cmd.wallet_id, cmd.source_wallet, cmd.at) == (
        "adj:cdr:c1:1",
        "w1",
        None,
        dt(T0),
    )
    assert cmd.splits == (("op", -700_000), ("platform", -200_000), ("reseller", -100_000))
    assert comparisons[0].old == (
        SplitLine("op", 1_400_000),
        SplitLine("platform", 400_000),
        SplitLine("reseller", 200_000),
    )


def test_split_billed_usage_is_adjusted_in_the_paying_wallet() -> None:
    items: list[Input] = [cdr("c1", 2 * MB, apn="corp")]
    _, history, _ = _rated(_corp_catalog("1"), items)
    rerated = _rerun(_corp_catalog("1.5"), "w1", items)
    (c,) = compare("w1", history["w1"], rerated, "r1")
    (cmd,) = c.commands
    assert (cmd.wallet_id, cmd.source_wallet, cmd.amount) == ("w2", "w1", 1_000_000)


def test_a_payer_that_changes_is_refunded_and_the_new_one_charged() -> None:
    items: list[Input] = [cdr("c1", 2 * MB, apn="corp")]
    _, history, _ = _rated(_corp_catalog("1"), items)
    rerated = _rerun(_corp_catalog("1", payer=False), "w1", items)
    (c,) = compare("w1", history["w1"], rerated, "r1")
    assert [(x.command_id, x.wallet_id, x.source_wallet, x.amount) for x in c.commands] == [
        ("adj:cdr:c1:1", "w2", "w1", -2_000_000),
        ("adj:cdr:c1:2", "w1", None, 2_000_000),
    ]
    assert c.amount == 0 and c.changed


def test_only_cdrs_started_in_the_window_are_compared() -> None:
    items: list[Input] = [cdr(f"c{i}", MB, at=T0 + i * 3600) for i in range(5)]
    _, history, _ = _rated(_corp_catalog("1"), items)
    rerated = _rerun(_corp_catalog("2"), "w1", items)
    window = compare("w1", history["w1"], rerated, "r1", dt(T0 + 3600), dt(T0 + 3 * 3600))
    assert [c.cdr_id for c in window] == ["c1", "c2"]


def test_the_corrected_cdr_is_named_by_the_adjustment_id() -> None:
    fields = ("a:b", "i", "data", "EU", "r", 1, 0, 1, (SplitLine("op", 1),))
    e = RatingAdjusted("cmd:adj:cdr:src/a:b:3#1", "w1", dt(T0), *fields)
    assert corrected_key(e) == "cdr:src/a:b"


def _compared_cdr_by_cdr(
    wallet_id: str,
    rated: list[Event],
    rerated: list[Event],
    start: datetime | None,
    end: datetime | None,
) -> list[Comparison]:
    """The comparison as first written, every CDR through the general settlement: the
    reference ``compare``'s shortcut for a CDR charged the same is held to."""
    cdrs: dict[str, _Cdr] = {}
    for e in rated:
        if isinstance(e, UsageRated) and e.wallet_id == wallet_id:
            c = cdrs.setdefault(input_key(e.id), _Cdr())
            c.rated, c.started_at = e, e.at
            c.paid_by(e.payer).add(e.amount, e.charged_volume, e.splits)
        elif isinstance(e, RatingAdjusted) and rating_wallet(e) == wallet_id:
            c = cdrs.setdefault(corrected_key(e), _Cdr())
            c.adjusted += 1
            c.paid_by(e.wallet_id).add(e.amount, e.charged_volume, e.splits)
    for e in rerated:
        if isinstance(e, UsageRated) and e.wallet_id == wallet_id:
            c = cdrs.setdefault(input_key(e.id), _Cdr())
            if c.new is None:
                c.new, c.new_payer = _Money(), e.payer
            c.new.add(e.amount, e.charged_volume, e.splits)
            c.rated, c.started_at = e, e.at
    return [
        _compare(wallet_id, key, c, "r1")
        for key, c in cdrs.items()
        if c.started_at is not None
        and (start is None or c.started_at >= start)
        and (end is None or c.started_at < end)
    ]


_KEYS = ("cdr:a", "cdr:b", "cdr:c")
_WALLETS = ("w1", "w2")


@st.composite
def _split_lines(draw: st.DrawFn) -> tuple[SplitLine, ...]:
    """Revenue lines, hostile: a provider twice, a zero line, none at all."""
    pairs = draw(st.lists(st.tuples(st.sampled_from(["op", "platform"]), st.integers(-3, 3))))
    return tuple(SplitLine(p, a) for p, a in pairs)


@st.composite
def _usage(draw: st.DrawFn, n: int) -> UsageRated:
    lines = draw(_split_lines())
    amount = sum(line.amount for line in lines) + draw(st.sampled_from([0, 0, 0, 1]))
    return UsageRated(
        f"{draw(st.sampled_from(_KEYS))}#{n}",
        draw(st.sampled_from(_WALLETS)),
        dt(T0 + draw(st.integers(0, 3)) * 3600),
        f"c{n}",
        "8900000000000000001",
        "data",
        "EU",
        MB,
        MB,
        0,
        draw(st.sampled_from([MB, MB // 2])),
        amount,
        "basic",
        1,
        "2025-01",
        draw(st.sampled_from(_WALLETS)),
        splits=lines,
    )


@st.composite
def _adjustment(draw: st.DrawFn, n: int) -> RatingAdjusted:
    key, payer = draw(st.sampled_from(_KEYS)), draw(st.sampled_from(_WALLETS))
    lines = draw(_split_lines())
    return RatingAdjusted(
        f"cmd:{adjustment_id(key, n)}#0",
        payer,
        dt(T0 + 9 * 3600),
        f"c{n}",
        "8900000000000000001",
        "data",
        "EU",
        "r0",
        sum(line.amount for line in lines),
        draw(st.integers(-1, 1)),
        1,
        lines,
        source_wallet=draw(st.sampled_from([None, *_WALLETS])),
    )


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_the_shortcut_for_a_cdr_charged_the_same_compares_as_the_general_path(
    data: st.DataObject,
) -> None:
    rated = [
        data.draw(st.one_of(_usage(n), _adjustment(n))) for n in range(data.draw(st.integers(0, 5)))
    ]
    rerated = [data.draw(_usage(100 + n)) for n in range(data.draw(st.integers(0, 2)))]
    # Often the same charges again (the case the shortcut takes), or nearly the same.
    for e in rated:
        if isinstance(e, UsageRated):
            changes = ["none", "same", "payer", "amount", "volume", "order", "lines"]
            change = data.draw(st.sampled_from(changes))
            if change == "same":
                rerated.append(e)
            elif change == "payer":
                rerated.append(msgspec.structs.replace(e, payer="w2" if e.payer == "w1" else "w1"))
            elif change == "amount":
                rerated.append(msgspec.structs.replace(e, amount=e.amount + 1))
            elif change == "volume":
                rerated.append(msgspec.structs.replace(e, charged_volume=e.charged_volume + 1))
            elif change == "order":
                rerated.append(msgspec.structs.replace(e, splits=e.splits[::-1]))
            elif change == "lines":  # one unit moved to another provider: the same amount
                moved = (*e.splits, SplitLine("op", -1), SplitLine("reseller", 1))
                rerated.append(msgspec.structs.replace(e, splits=moved))
    start = data.draw(st.sampled_from([None, dt(T0 + 3600)]))
    end = data.draw(st.sampled_from([None, dt(T0 + 3 * 3600)]))
    for wallet_id in _WALLETS:
        assert compare(wallet_id, rated, rerated, "r1", start, end) == _compared_cdr_by_cdr(
            wallet_id, rated, rerated, start, end
        )


# -- properties over random catalogs and histories --------------------------------------


@st.composite
def repriced(draw: st.DrawFn, cat: Catalog) -> Catalog:
    """The same catalog with another EU data rate, other usage shares, maybe no filters."""
    basic = cat.plans["basic"]
    v = basic.versions[0]
    rates = {**v.rates, "data": {**v.rates["data"], "EU": draw(data_rates())}}
    version = msgspec.structs.replace(
        v,
        rates=rates,
        usage_splits=shares(draw(weights)),
        filters=v.filters if draw(st.booleans()) else (),
    )
    plans: dict[str, Plan] = {
        **cat.plans,
        "basic": Plan(basic.id, basic.name, (version, *basic.versions[1:])),
    }
    assert isinstance(version, PlanVersion)
    return msgspec.structs.replace(cat, plans=plans)


class Replayed:
    """A history rated with ``old``, compared with ``new``, and the commands applied."""

    def __init__(self, old: Catalog, new: Catalog, items: list[Input]) -> None:
        self.old, self.new, self.items = old, new, items
        pipeline, self.history, self.inputs = _rated(old, items)
        self.states: dict[str, WalletState] = dict(pipeline.states)
        self.rerated = _rerun(new, "w1", self.inputs.get("w1", []))
        self.comparisons = compare("w1", self.all_events(), self.rerated, "r1")
        self.applied: list[tuple[AdjustRating, list[Event]]] = []
        for c in self.comparisons:
            for cmd in c.commands:
                self.apply(cmd)

    def all_events(self) -> list[Event]:
        return [e for events in self.history.values() for e in events]

    def apply(self, cmd: AdjustRating) -> None:
        payer = cmd.wallet_id
        state = self.states.get(payer) or initial_state(payer)
        last = max((e.at for e in self.history.get(payer, ())), default=cmd.at)
        cmd = msgspec.structs.replace(cmd, at=max(last, cmd.at))
        events, self.states[payer] = step(state, cmd, self.new)
        self.history.setdefault(payer, []).extend(events)
        self.applied.append((cmd, events))


def _revenue(events: list[Event]) -> Counter[str]:
    out: Counter[str] = Counter()
    for e in events:
        if isinstance(e, UsageRated | RatingAdjusted):
            for line in e.splits:
                out[line.provider] += line.amount
    return out


# A closed wallet refuses every later input, a replay's adjustments too (``wallet_closed``):
# these properties are about wallets that can still take them, so none is closed here.
@FAST
@given(data=st.data(), cat=catalogs(), items=inputs(closing=False))
def test_after_a_replay_revenue_is_what_the_new_catalog_rates(
    data: st.DataObject, cat: Catalog, items: list[Input]
) -> None:
    r = Replayed(cat, data.draw(repriced(cat)), items)
    assert not any(isinstance(e, CommandRejected) for _, es in r.applied for e in es)
    revenue = _revenue(r.all_events())
    expected = _revenue(r.rerated)
    assert {p: a for p, a in revenue.items() if a} == {p: a for p, a in expected.items() if a}
    # charged per paying wallet too: usage paid + adjustments = what the new rating charges
    paid: Counter[str] = Counter()
    for e in r.all_events():
        if isinstance(e, UsageRated):
            paid[e.payer] += e.amount
        elif isinstance(e, RatingAdjusted):
            paid[e.wallet_id] += e.amount
    new_paid: Counter[str] = Counter()
    for e in r.rerated:
        if isinstance(e, UsageRated):
            new_paid[e.payer] += e.amount
    assert {w: a for w, a in paid.items() if a} == {w: a for w, a in new_paid.items() if a}


@FAST
@given(data=st.data(), cat=catalogs(), items=inputs(closing=False))
def test_money_is_conserved_with_adjustments(
    data: st.DataObject, cat: Catalog, items: list[Input]
) -> None:
    r = Replayed(cat, data.draw(repriced(cat)), items)
    for wallet_id, events in r.history.items():
        opened = credited = debited = expired = uncollected = written_off = 0
        for e in events:
            match e:
                case DebtWrittenOff():
                    written_off += e.amount
                case WalletOpened():
                    opened += sum(g.amount for g in e.grants)
                case GrantAdded():
                    credited += e.grant.amount
                case GrantExpired():
                    expired += e.amount
                case UsageRated() | Charged():
                    debited += sum(d.amount for d in e.debits) + e.overdraft
                    uncollected += e.uncollected
                case RatingAdjusted():
                    assert sum(s.amount for s in e.splits) == e.amount
                    paid = sum(d.amount for d in e.debits) + e.overdraft + e.uncollected
                    refund = e.credit.amount if e.credit is not None else 0
                    assert e.amount == paid - refund
                    assert (paid == 0 or refund == 0) and 0 <= e.debt_repaid <= refund
                    debited += paid - e.uncollected
                    credited += refund
                    uncollected += e.uncollected
        state = r.states[wallet_id]
        assert state.balance == opened + credited - debited - expired + written_off
        assert state.uncollected == uncollected == 0


@FAST
@given(data=st.data(), cat=catalogs(), items=inputs(closing=False))
def test_fold_equals_live_and_retries_and_second_replays_are_no_ops(
    data: st.DataObject, cat: Catalog, items: list[Input]
) -> None:
    r = Replayed(cat, data.draw(repriced(cat)), items)
    for wallet_id, events in r.history.items():
        stored = [decode_event(encode(e)) for e in events]
        assert fold(initial_state(wallet_id), stored) == r.states[wallet_id]
    for cmd, _ in r.applied:
        state = r.states[cmd.wallet_id]
        assert step(state, cmd, r.new) == ([], state)
    again = compare("w1", r.all_events(), r.rerated, "r2")
    assert [c for c in again if c.changed] == []
    assert len(again) == len(r.comparisons)


@FAST
@given(cat=catalogs(), items=inputs(closing=False))
def test_the_same_catalog_changes_nothing(cat: Catalog, items: list[Input]) -> None:
    r = Replayed(cat, cat, items)
    assert r.applied == []
