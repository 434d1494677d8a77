"""Properties over random catalogs and input sequences: the rules that must always hold.

Each property runs ``step`` over random inputs and checks the events against a small,
independent model (grants, thresholds, pool buckets) rather than against the code's own state.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.domain import Catalog, Event, fold, initial_state, step
from engine.domain.catalog import Bundle, Pool
from engine.domain.cdr import Cdr
from engine.domain.cycles import cycle_of
from engine.domain.dedup import duplicate
from engine.domain.events import (
    AutoTopUpRequested,
    CdrRejected,
    Charged,
    CommandRejected,
    DebtWrittenOff,
    GrantAdded,
    GrantExpired,
    PoolCycleClosed,
    PoolStepped,
    SimsBarred,
    SimsUnbarred,
    ThresholdCrossed,
    UsageRated,
    WalletHeld,
    WalletOpened,
    WalletReleased,
    WalletResumed,
    WalletSuspended,
)
from engine.domain.limits import admit
from engine.domain.refusal import Refused
from engine.domain.sims import active_in
from engine.domain.state import NEVER, WalletState

from .builders import (
    DAY,
    MB,
    SIM1,
    SIM2,
    T0,
    Input,
    adaptive_pool,
    addon,
    catalog,
    cdr,
    encode,
    flexible_pool,
    plan,
    rate,
    stacked_pool,
    static_pool,
    sub,
    tick,
    ts,
    wallet,
)
from .strategies import scenarios, wallet_in

Scenario = tuple[Catalog, list[Input]]

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(
    cat: Catalog, items: list[Input], wallet_id: str = "w1"
) -> tuple[list[list[Event]], WalletState]:
    """Every decision's events, and the final state."""
    state = initial_state(wallet_id)
    decisions = []
    for item in items:
        events, state = step(state, item, cat)
        decisions.append(events)
    return decisions, state


def instant(item: Input) -> int:
    return int((item.started_at if isinstance(item, Cdr) else item.at).timestamp())


def rejected(events: list[Event]) -> bool:
    """A decision that rejected its input (a rejection is always decided alone)."""
    return any(isinstance(e, CdrRejected | CommandRejected) for e in events)


# -- an independent model of a wallet's grants -----------------------------------------


@dataclass
class ModelGrant:
    priority: int
    expires_at: int | None
    seq: int
    remaining: int

    def burn_key(self) -> tuple[int, int, int]:
        return (self.priority, NEVER if self.expires_at is None else self.expires_at, self.seq)


@dataclass
class Ledger:
    """Grants, debt and totals rebuilt from events alone, checking each rule on the way."""

    overdraft_limit: int
    grants: dict[str, ModelGrant] = field(default_factory=dict)
    seq: int = 0
    debt: int = 0
    uncollected: int = 0
    credited: int = 0
    debited: int = 0
    expired: int = 0
    written_off: int = 0
    fired: set[int] = field(default_factory=set)

    @property
    def credit(self) -> int:
        return sum(g.remaining for g in self.grants.values())

    @property
    def balance(self) -> int:
        return self.credit - self.debt

    def add(
        self, grant_id: str, amount: int, priority: int, expires: object, repaid: int = 0
    ) -> None:
        self.seq += 1
        exp = None if expires is None else int(expires.timestamp())  # type: ignore[attr-defined]
        assert 0 <= repaid <= min(amount, self.debt)
        self.debt -= repaid
        if amount - repaid > 0:
            self.grants[grant_id] = ModelGrant(priority, exp, self.seq, amount - repaid)
        self.credited += amount

    def pay(self, e: UsageRated | Charged, ts_: int) -> None:
        """Burn order: debits are a prefix of the live grants in burn order, each fully used
        but the last; never a grant expired at the charge instant."""
        live = sorted(
            (g for g in self.grants.items() if g[1].expires_at is None or g[1].expires_at > ts_),
            key=lambda kv: kv[1].burn_key(),
        )
        assert [d.grant_id for d in e.debits] == [gid for gid, _ in live[: len(e.debits)]]
        for i, d in enumerate(e.debits):
            g = self.grants[d.grant_id]
            assert 0 < d.amount <= g.remaining
            if i < len(e.debits) - 1 or e.overdraft or e.uncollected:
                assert d.amount == g.remaining, "a later grant was used while this one had credit"
            g.remaining -= d.amount
            if g.remaining == 0:
                del self.grants[d.grant_id]
        if e.overdraft or e.uncollected:
            assert len(e.debits) == len(live), "overdraft used while a grant had credit"
        assert e.overdraft >= 0
        # nothing owed is lost: what the grants do not cover is debt, past the overdraft
        # limit too (the limit suspends; only an explicit write-off forgives)
        assert e.uncollected == 0
        self.debt += e.overdraft
        self.uncollected += e.uncollected
        self.debited += sum(d.amount for d in e.debits) + e.overdraft

    def apply(self, e: Event) -> None:
        ts_ = int(e.at.timestamp())
        match e:
            case WalletOpened():
                for g in e.grants:
                    self.add(g.grant_id, g.amount, g.priority, g.expires_at)
                self.credited -= sum(g.amount for g in e.grants)  # opening is not a credit
            case GrantAdded():
                assert e.grant.amount > 0
                self.add(
                    e.grant.grant_id,
                    e.grant.amount,
                    e.grant.priority,
                    e.grant.expires_at,
                    e.debt_repaid,
                )
            case GrantExpired():
                gone = self.grants.pop(e.grant_id)
                assert gone.expires_at is not None and gone.expires_at <= ts_
                assert e.amount == gone.remaining
                self.expired += e.amount
            case UsageRated():
                assert e.amount >= 0
                assert sum(s.amount for s in e.splits) == e.amount
                if e.payer == e.wallet_id:
                    assert e.amount == sum(d.amount for d in e.debits) + e.overdraft + e.uncollected
                    self.pay(e, ts_)
                else:
                    assert (e.debits, e.overdraft, e.uncollected) == ((), 0, 0)
            case Charged():
                assert e.amount >= 0
                assert e.amount == sum(d.amount for d in e.debits) + e.overdraft + e.uncollected
                assert sum(s.amount for s in e.splits) == e.amount
                self.pay(e, ts_)
            case PoolCycleClosed():
                # a true-up: overage moved into the pool, its price back as a refund grant
                assert e.credited_volume >= 0 and e.overage >= 0
                assert e.overage == 0 or e.used >= e.allowance, "overage left with room"
                back = e.credit.amount if e.credit is not None else 0
                assert back >= 0 and (back == 0) == (e.credit is None)
                assert not e.splits or sum(x.amount for x in e.splits) == -back
                if e.credit is not None:
                    self.add(e.credit.grant_id, back, e.credit.priority, None, e.debt_repaid)
            case DebtWrittenOff():
                assert 0 < e.amount <= self.debt and e.reason
                self.debt -= e.amount
                self.written_off += e.amount
            case _:
                pass


def opening_total(decisions: list[list[Event]]) -> int:
    """The opening grants (a catalog wallet's; none for one opened by command)."""
    return sum(
        g.amount for d in decisions for e in d if isinstance(e, WalletOpened) for g in e.grants
    )


# -- 1. money is conserved; 3. state is the fold of the events; 6. burn order ----------


@FAST
@given(scenario=scenarios())
def test_money_is_conserved_and_burn_order_holds(scenario: Scenario) -> None:
    cat, items = scenario
    decisions, state = run(cat, items)
    ledger = Ledger(wallet_in(cat, items).overdraft_limit)
    for item, events in zip(items, decisions, strict=True):
        for e in events:
            ledger.apply(e)
        if events and not rejected(events):
            # expiry is decided at the first accepted input at/after it (a rejection, or a
            # retried command that is a no-op, decides nothing else): nothing expired is left
            when = instant(item)
            assert all(g.expires_at is None or g.expires_at > when for g in ledger.grants.values())
    opened = any(isinstance(e, WalletOpened) for d in decisions for e in d)
    start = opening_total(decisions) if opened else 0
    assert state.balance == (
        start + ledger.credited - ledger.debited - ledger.expired + ledger.written_off
    )
    assert (state.credit, state.debt, state.uncollected) == (
        ledger.credit,
        ledger.debt,
        ledger.uncollected,
    )
    assert {g.id: g.remaining for g in state.grants} == {
        gid: g.remaining for gid, g in ledger.grants.items()
    }
    # nothing owed is lost: every micro-unit charged is paid by a grant or still owed
    assert state.uncollected == 0 and state.debt >= 0


@FAST
@given(scenario=scenarios())
def test_state_is_the_fold_of_all_events_so_far(scenario: Scenario) -> None:
    cat, items = scenario
    state = initial_state("w1")
    history: list[Event] = []
    for item in items:
        events, state = step(state, item, cat)
        history.extend(events)
        assert fold(initial_state("w1"), history) == state
    # and replaying the stored (encoded, decoded) events gives the same state
    stored = msgspec.json.decode(encode(history), type=list[Event])
    assert fold(initial_state("w1"), stored) == state


@FAST
@given(scenario=scenarios())
def test_an_input_admitted_by_the_caller_is_decided_as_step_alone_decides_it(
    scenario: Scenario,
) -> None:
    # flow admits an input before it touches a wallet and hands step the instant it got;
    # step then does not admit it again, and must decide exactly as if it had.
    cat, items = scenario
    alone = given_ts = initial_state("w1")
    for item in items:
        try:
            ts = admit(cat, "w1", item, opened=given_ts.terms is not None)
        except Refused:
            continue  # flow rejects it before any wallet: step never sees it
        expected, alone = step(alone, item, cat)
        events, given_ts = step(given_ts, item, cat, ts)
        assert encode(events) == encode(expected)
        assert given_ts == alone


# -- 2. determinism --------------------------------------------------------------------


@FAST
@given(scenario=scenarios())
def test_same_inputs_give_byte_identical_events(scenario: Scenario) -> None:
    cat, items = scenario
    first, _ = run(cat, items)
    # the same catalog without its index: the tables it holds change no event
    again, _ = run(msgspec.structs.replace(cat, index=None), items)
    assert encode(e for d in first for e in d) == encode(e for d in again for e in d)
    # an id names one event, so a store may ignore a second write of an id. The one
    # exception: an input rejected again for the same reason is rejected under the same id
    # (<key>#<reason>). An input rejected and later accepted never reuses the rejection's id.
    ids: set[str] = set()
    rejection_ids: set[str] = set()
    for item, events in zip(items, first, strict=True):
        for e in events:
            if isinstance(e, CdrRejected | CommandRejected):
                assert e.id == f"{item.key}#{e.reason}"
                rejection_ids.add(e.id)
                continue
            assert e.id not in ids, e.id
            ids.add(e.id)
    assert not ids & rejection_ids


_SCENARIO = """
import hashlib, sys
sys.path.insert(0, {root!r})
from tests.domain.test_properties import hash_seed_scenario
print(hash_seed_scenario())
"""


def hash_seed_scenario() -> str:
    """Events of a wallet with several attached SIMs, ticks and a suspension, as a digest."""
    import hashlib

    from .builders import attach, opening, top_up

    cat = catalog(
        plans=[plan(mrc="1", restart_fee="0.1", rates={"data": {"EU": rate("1", MB)}})],
        wallets=[wallet(opening=[opening("3")], suspend_at=0, resume_at=0, overdraft="100")],
    )
    items: list[Input] = [
        attach(f"a{i}", f"89000000000000001{i:02d}", at=T0 + i) for i in range(12)
    ]
    items += [
        tick("t1", T0 + 100),
        top_up("u1", "50", at=T0 + 200),
        tick("t2", T0 + 40 * DAY),
        cdr("c1", 80 * MB, at=T0 + 40 * DAY + 1),
        top_up("u2", "100", at=T0 + 40 * DAY + 2),
    ]
    decisions, _ = run(cat, items)
    return hashlib.sha256(encode(e for d in decisions for e in d)).hexdigest()


def test_events_do_not_depend_on_the_process_hash_seed() -> None:
    """Replay on another worker must give the same bytes: no set or map order may leak."""
    root = str(Path(__file__).resolve().parents[2])
    digests = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", _SCENARIO.format(root=root)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=root,
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1


# -- 4. and 10. duplicates are charged once --------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.integers(0, 3 * DAY), min_size=1, max_size=15),
    pick=st.integers(0, 100),
    resend_after=st.integers(0, 100),
    window_days=st.integers(1, 5),
)
def test_a_cdr_resent_within_the_window_is_charged_once(
    gaps: list[int], pick: int, resend_after: int, window_days: int
) -> None:
    cat = catalog(
        plans=[plan(rates={"data": {"EU": rate("1", MB)}})], dedup_window=window_days * DAY
    )
    clock = T0
    records = []
    for i, gap in enumerate(gaps):
        clock += gap
        records.append(cdr(f"c{i}", MB, at=clock))
    original = records[pick % len(records)]
    position = records.index(original) + 1 + resend_after % (len(records) - records.index(original))
    resent = cdr(original.cdr_id, 3 * MB, at=instant(original))
    items: list[Input] = [*records[:position], resent, *records[position:]]
    decisions, state = run(cat, items)
    # the re-sent record is within the window when nothing rated before it is a window newer
    watermark = max(instant(r) for r in records[:position])
    if instant(original) >= watermark - cat.dedup_window:
        rejected = decisions[position]
        assert len(rejected) == 1 and isinstance(rejected[0], CdrRejected)
        assert rejected[0].reason == "duplicate"
    rated = Counter(e.cdr_id for d in decisions for e in d if isinstance(e, UsageRated))
    assert rated[original.cdr_id] == 1
    assert state.balance == 100_000_000 - len(records) * 1_000_000


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(
        st.tuples(st.integers(0, 4 * DAY), st.sampled_from([0, 0, 3600, DAY, 3 * DAY])),
        min_size=1,
        max_size=30,
    ),
    resends=st.lists(st.tuples(st.integers(0, 100), st.integers(0, 100)), max_size=8),
    window_days=st.integers(1, 3),
)
def test_after_generations_rotate_an_old_cdr_is_duplicate_or_late(
    gaps: list[tuple[int, int]], resends: list[tuple[int, int]], window_days: int
) -> None:
    window = window_days * DAY
    cat = catalog(plans=[plan(rates={"data": {"EU": rate("1", MB)}})], dedup_window=window)
    clock = T0
    records = []
    for i, (gap, back) in enumerate(gaps):
        clock += gap
        records.append(cdr(f"c{i}", MB, at=clock - back))  # some arrive out of order
    # re-send old records (with their own time) at random later points, windows later
    later: dict[int, list[Cdr]] = {}
    for which, where in resends:
        i = which % len(records)
        original = records[i]
        after = i + where % (len(records) - i)
        later.setdefault(after, []).append(cdr(original.cdr_id, 2 * MB, at=instant(original)))
    items = [r for i, record in enumerate(records) for r in (record, *later.get(i, ()))]
    state = initial_state("w1")
    rated: Counter[str] = Counter()
    for item in items:
        before = state
        events, state = step(state, item, cat)
        for e in events:
            if isinstance(e, UsageRated):
                rated[e.cdr_id] += 1
            if isinstance(e, CdrRejected):
                assert e.reason in ("duplicate", "late")
                if e.reason == "late":
                    assert instant(item) < before.watermark - window
        if duplicate(before, item.key):
            assert not any(isinstance(e, UsageRated) for e in events)
        # every key the decider would still accept a record for stays remembered
        for key, seen_at in (*before.seen.items(), *before.seen_before.items()):
            if seen_at >= state.watermark - window:
                assert duplicate(state, key)
    assert all(count == 1 for count in rated.values())
    assert set(rated) <= {r.cdr_id for r in records}


# -- 5. pools are never drawn past their allowance -------------------------------------


@st.composite
def pool_scenarios(draw: st.DrawFn) -> tuple[Catalog, list[Input]]:
    kind = draw(st.sampled_from(["static", "flexible", "stacked", "adaptive"]))
    if kind == "static":
        pool = static_pool(allowance=draw(st.integers(0, 30)) * MB)
    elif kind == "flexible":
        pool = flexible_pool(per_sim=draw(st.integers(0, 10)) * MB)
    elif kind == "stacked":
        bundles = []
        for i in range(draw(st.integers(1, 4))):
            start = T0 + draw(st.integers(-10, 60)) * DAY
            days = draw(st.none() | st.integers(1, 90))
            size = draw(st.integers(0, 10)) * MB
            end = None if days is None else start + days * DAY
            bundles.append(Bundle(f"b{i}", size, start, end))
        pool = stacked_pool(bundles=bundles)
    else:
        sizes = sorted(set(draw(st.lists(st.integers(1, 40), min_size=1, max_size=4))))
        pool = adaptive_pool(tiers=[(s * MB, str(i * 3)) for i, s in enumerate(sizes)])
    subs = [
        sub(SIM1, pool="p1"),
        sub(SIM2, pool="p1", active_from=T0 + draw(st.integers(-40, 60)) * DAY),
        sub("8900000000000000003", pool="p1", active_to=T0 + draw(st.integers(-40, 60)) * DAY),
    ]
    cat = catalog(
        plans=[plan(rates={"data": {"EU": rate("0.01", MB), "US": rate("0.1", MB)}})],
        pools=[pool],
        subs=subs,
    )
    clock = T0 - 30 * DAY
    items: list[Input] = []
    for i in range(draw(st.integers(1, 30))):
        clock += draw(st.sampled_from([0, 3600, DAY, 7 * DAY]))
        items.append(
            cdr(
                f"c{i}",
                draw(st.integers(0, 15 * MB)),
                at=clock,
                iccid=draw(st.sampled_from([SIM1, SIM2, "8900000000000000003"])),
                network=draw(st.sampled_from(["262-01", "262-01", "310-260"])),
            )
        )
    return cat, items


@settings(max_examples=300, deadline=None)
@given(scenario=pool_scenarios())
def test_no_pool_bucket_is_drawn_past_its_allowance(scenario: tuple[Catalog, list[Input]]) -> None:
    cat, items = scenario
    pool = cat.pools["p1"]
    decisions, _ = run(cat, items)
    drawn: Counter[str] = Counter()
    tier: dict[str, int] = {}
    for events in decisions:
        for e in events:
            if isinstance(e, PoolStepped):
                used = drawn[e.cycle]
                rated = next(u for u in events if isinstance(u, UsageRated))
                wanted = used + rated.rated_volume
                fitting = [i for i, t in enumerate(pool.tiers) if t.size >= wanted]
                # the smallest tier that fits, or the largest when none does
                assert e.tier == (fitting[0] if fitting else len(pool.tiers) - 1)
                assert e.tier > tier.get(e.cycle, 0)
                step_charge = next(c for c in events if isinstance(c, Charged))
                previous = pool.tiers[tier.get(e.cycle, 0)].price
                assert step_charge.amount == pool.tiers[e.tier].price - previous
                tier[e.cycle] = e.tier
            if isinstance(e, UsageRated):
                assert e.pooled_volume + e.charged_volume == e.rated_volume
                assert sum(d.volume for d in e.draws) == e.pooled_volume
                ts_ = int(e.at.timestamp())
                if e.zone != "EU":
                    assert e.draws == ()
                for d in e.draws:
                    assert d.volume > 0
                    drawn[d.bucket] += d.volume
                    if pool.kind == "stacked":
                        bundle = next(b for b in pool.bundles if b.id == d.bucket)
                        assert bundle.valid_from <= ts_ < (bundle.valid_to or NEVER)
                    else:
                        assert d.bucket == cycle_of(ts_, 1).id
                # whatever the pool could still cover, it covered before rating
                if e.charged_volume and e.zone == "EU" and pool.kind in ("static", "adaptive"):
                    assert drawn[e.cycle] == limit(pool, cat, e.cycle, tier)
    for bucket, volume in drawn.items():
        assert volume <= limit(pool, cat, bucket, tier), (bucket, volume)


def limit(pool: Pool, cat: Catalog, bucket: str, tier: dict[str, int]) -> int:
    """A bucket's allowance, computed from the catalog (not from the code under test)."""
    if pool.kind == "static":
        return pool.allowance
    if pool.kind == "flexible":
        start = ts(f"{bucket}T00:00:00Z")
        cycle = cycle_of(start, 1)
        return pool.per_sim * sum(1 for s in cat.subscriptions.values() if active_in(s, cycle))
    if pool.kind == "stacked":
        return next(b.size for b in pool.bundles if b.id == bucket)
    return pool.tiers[tier.get(bucket, 0)].size


# -- 7. thresholds fire at most once between top-ups -----------------------------------


@FAST
@given(scenario=scenarios(payer=False))
def test_thresholds_fire_once_between_rearming_top_ups(scenario: Scenario) -> None:
    cat, items = scenario
    decisions, _ = run(cat, items)
    w = wallet_in(cat, items)
    levels = w.thresholds
    auto = w.auto_top_up
    armed = set(levels)
    auto_armed = True
    ledger = Ledger(w.overdraft_limit)
    for events in decisions:
        for e in events:
            ledger.apply(e)
            if isinstance(e, ThresholdCrossed):
                assert e.level in armed, "fired twice without a top-up in between"
                assert e.balance == ledger.balance <= e.level  # reaching a level counts
                armed.discard(e.level)
            elif isinstance(e, GrantAdded):
                for level in e.rearmed:
                    assert level not in armed and ledger.balance > level
                    armed.add(level)
                # a level fired and now exceeded again is re-armed by the top-up that did it
                assert all(level in armed for level in levels if ledger.balance > level)
                if e.auto_top_up_rearmed:
                    assert auto is not None and not auto_armed and ledger.balance >= auto.below
                    auto_armed = True
            elif isinstance(e, AutoTopUpRequested):
                assert auto is not None and auto_armed and e.balance < auto.below
                auto_armed = False
        # after a decision that debited something, no armed level is above the balance
        if any(isinstance(e, UsageRated | Charged) and e.amount for e in events):
            assert all(level <= ledger.balance for level in armed)
            assert auto is None or not auto_armed or ledger.balance >= auto.below


@FAST
@given(scenario=scenarios(payer=False))
def test_suspension_and_resumption_follow_the_balance(scenario: Scenario) -> None:
    cat, items = scenario
    w = wallet_in(cat, items)
    decisions, state = run(cat, items)
    ledger = Ledger(w.overdraft_limit)
    suspended = held = False
    for events in decisions:
        for i, e in enumerate(events):
            ledger.apply(e)
            if isinstance(e, WalletHeld):
                assert not held
                held = True
            elif isinstance(e, WalletReleased):
                assert held and suspended
                held = False
            elif isinstance(e, WalletSuspended):
                # at the suspension level, or by hand whatever the balance
                assert not suspended and e.balance == ledger.balance
                assert e.balance <= w.suspend_at or isinstance(events[i - 1], WalletHeld)
                assert isinstance(events[i + 1], SimsBarred)
                suspended = True
            elif isinstance(e, WalletResumed):
                # after a credit (a top-up, or a pool's true-up at a cycle's close), or a
                # release by hand; never while held
                assert suspended and not held
                assert isinstance(events[i - 1], GrantAdded | PoolCycleClosed | WalletReleased)
                assert e.balance == ledger.balance > w.resume_at
                assert isinstance(events[i + 1], SimsUnbarred)
                suspended = False
                # then one restart fee per unbarred SIM whose plan has one
                fee = cat.plans["basic"].versions[0].restart_fee
                fees = [
                    c.ref
                    for c in events[i + 2 :]
                    if isinstance(c, Charged) and c.kind == "restart_fee"
                ]
                unbarred = events[i + 1].iccids  # type: ignore[union-attr]
                if cat.plans["basic"].versions[0].restart_fee_per == "wallet":
                    # once per resume for the plan, whatever the number of SIMs on it
                    assert set(fees) <= {"plan:basic", "plan:other"} and len(fees) == len(set(fees))
                else:
                    assert len(fees) <= len(unbarred)
                    assert set(fees) <= set(unbarred)
                    if fee and all(not state.plan_changes.get(s) for s in unbarred):
                        assert fees == list(unbarred)
                # all or nothing: the fees leave the balance above resume_at, so the same
                # decision never suspends (and bars) again
                charged = sum(
                    c.amount
                    for c in events[i + 2 :]
                    if isinstance(c, Charged) and c.kind == "restart_fee"
                )
                assert e.balance - charged > w.resume_at
                assert not any(isinstance(x, WalletSuspended) for x in events[i:])
            elif isinstance(e, GrantAdded) and suspended and ledger.balance > w.resume_at:
                resumes = i + 1 < len(events) and isinstance(events[i + 1], WalletResumed)
                if not cat.plans["basic"].versions[0].restart_fee:
                    assert resumes != held, "a top-up above resume_at resumes unless held"
        if any(isinstance(e, UsageRated | Charged) and e.amount for e in events):
            assert suspended or ledger.balance > w.suspend_at
        assert suspended or not held, "a wallet held by hand stays suspended"
    assert (state.suspended, state.held) == (suspended, held)


# -- 8. recurring charges once per cycle -----------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 200 * DAY), min_size=1, max_size=25),
    anchor=st.integers(1, 28),
    repeat=st.booleans(),
)
def test_ticks_charge_each_mrc_once_per_cycle(
    offsets: list[int], anchor: int, repeat: bool
) -> None:
    cat = catalog(
        plans=[plan(mrc="2", addons=[addon("gps", "0.5")])],
        subs=[sub(SIM1, addons=("gps",)), sub(SIM2)],
        pools=[static_pool(price="3")],
        wallets=[wallet(anchor=anchor)],
    )
    times = sorted(T0 + o for o in offsets)
    items: list[Input] = [tick(f"t{i}", t) for i, t in enumerate(times)]
    if repeat:
        items += [tick(f"again{i}", t) for i, t in enumerate(times)]
    decisions, _ = run(cat, items)
    charged = Counter((e.ref, e.cycle) for d in decisions for e in d if isinstance(e, Charged))
    assert all(n == 1 for n in charged.values()), charged
    first, last = cycle_of(times[0], anchor), cycle_of(times[-1], anchor)
    expected_cycles = set()
    c = first
    while c.start <= last.start:
        expected_cycles.add(c.id)
        c = cycle_of(c.end, anchor)
    for ref in (SIM1, f"{SIM1}/gps", SIM2, "pool:p1"):
        assert {cycle for r, cycle in charged if r == ref} == expected_cycles


# -- invariants of a single decision ---------------------------------------------------


@FAST
@given(scenario=scenarios())
def test_every_decision_is_well_formed(scenario: Scenario) -> None:
    cat, items = scenario
    decisions, _ = run(cat, items)
    opened = False
    openings = 0
    moved_money: set[str] = set()
    for item, events in zip(items, decisions, strict=True):
        key = item.key
        if not isinstance(item, Cdr) and key in moved_money:
            # a retried command that already moved money is a no-op (not even a rejection)
            assert events == []
        elif rejected(events):
            # a rejection decides nothing else (no opening, no expiry), under its reason
            assert len(events) == 1, events
            assert events[0].id == f"{key}#{events[0].reason}"  # type: ignore[union-attr]
        elif not opened:
            # the wallet opens on its first accepted input
            assert events and isinstance(events[0], WalletOpened)
            opened = True
        for position, e in enumerate(events):
            if isinstance(e, WalletOpened):
                assert position == 0 and e.id == "open:w1#0"
                openings += 1
            elif not isinstance(e, CdrRejected | CommandRejected):
                assert e.id == f"{key}#{position}"
            assert e.wallet_id == "w1"
            if e.id.startswith("cmd:") and (
                isinstance(e, GrantAdded) or (isinstance(e, Charged) and e.kind == "routed_usage")
            ):
                moved_money.add(key)
        usage = [e for e in events if isinstance(e, UsageRated)]
        assert len(usage) <= 1
        if isinstance(item, Cdr) and usage:
            assert usage[0].cdr_id == item.cdr_id and usage[0].volume == item.volume
    # opened once, by the decision that first accepted an input
    assert openings == (1 if opened else 0)


# -- no decision both unbars and bars a SIM ------------------------------------------------


@FAST
@given(scenario=scenarios(payer=False))
def test_no_decision_both_unbars_and_bars(scenario: Scenario) -> None:
    cat, items = scenario
    decisions, _ = run(cat, items)
    suspended = False
    for events in decisions:
        kinds = {type(e).__name__ for e in events}
        assert not {"SimsBarred", "SimsUnbarred"} <= kinds, kinds
        for e in events:
            if type(e).__name__ == "WalletSuspended":
                suspended = True
            elif type(e).__name__ == "WalletResumed":
                # resumed only when the restart fees leave the balance above resume_at
                suspended = False
        assert ("WalletResumed" in kinds) <= (not suspended)
