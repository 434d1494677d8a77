"""decide(state, input, catalog) -> events: every rule of a wallet, and nothing else.

A decision is built step by step: each event is applied to a working copy of the state as
it is emitted, so later rules (thresholds, suspension) see the effect of earlier ones, and
the state a decision ends in is by construction ``fold(evolve, events)``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from . import pools, rating
from .catalog import (
    DEFAULT_PRIORITY,
    Catalog,
    Filter,
    PlanVersion,
    Rate,
    Share,
    Subscription,
    Wallet,
)
from .cdr import Cdr
from .commands import (
    AdjustRating,
    ApplyCharge,
    AttachSim,
    ChangePlan,
    Command,
    DetachSim,
    RedeemVoucher,
    Tick,
    TopUp,
)
from .cycles import Cycle, cycle_of, cycles_between, next_cycle
from .events import (
    AutoTopUpRequested,
    BarSims,
    CdrRejected,
    Charged,
    CommandRejected,
    Event,
    GrantAdded,
    GrantExpired,
    GrantInfo,
    PlanChanged,
    PoolStepped,
    RatingAdjusted,
    SimAttached,
    SimDetached,
    SplitLine,
    ThresholdCrossed,
    UnbarSims,
    UsageRated,
    WalletOpened,
    WalletResumed,
    WalletSuspended,
)
from .evolve import charged, evolve, usage_rated
from .grants import expired, settle
from .limits import admission, volume_problem
from .money import MoneyError, allocate, parse_money
from .sims import active_at, active_iccids, active_in, plan_at, pool_sims, sim, wallet_sims
from .state import WalletState
from .zones import zone_of

Input = Cdr | Command

MAX_CATCH_UP = 24
"""Cycles of recurring charges one tick may catch up after a long silence."""


@lru_cache(maxsize=4096)
def splits(shares: tuple[Share, ...], amount: int) -> tuple[SplitLine, ...]:
    """Revenue lines for a charge; they sum exactly to it (largest remainder).

    Cached: a handful of splits meet the same amounts over and over (a message, a minute, a
    fee), and allocating is a good part of rating a record. The lines are frozen, so events
    may share them.
    """
    if not amount or not shares:
        return ()
    parts = allocate(amount, tuple([s.weight for s in shares]))
    return tuple([SplitLine(s.provider, p) for s, p in zip(shares, parts, strict=True) if p])


class _Decision:
    """The events of one decision so far, and the state they lead to."""

    __slots__ = ("catalog", "events", "key", "state", "wallet")

    def __init__(self, state: WalletState, key: str, catalog: Catalog, wallet: Wallet) -> None:
        self.state = state
        self.key = key
        self.catalog = catalog
        self.wallet = wallet
        self.events: list[Event] = []

    def next_id(self) -> str:
        return f"{self.key}#{len(self.events)}"

    def emit(self, event: Event) -> None:
        self.events.append(event)
        self.state = evolve(self.state, event)

    def emit_applied(self, event: Event, state: WalletState) -> None:
        """Emit ``event`` whose resulting state the caller already computed (equal to
        ``evolve(self.state, event)``, only cheaper to get where the caller knows more)."""
        self.events.append(event)
        self.state = state


def step(state: WalletState, item: Input, catalog: Catalog) -> tuple[list[Event], WalletState]:
    """Decide on ``item`` and return the events with the state they lead to."""
    wallet = catalog.wallets.get(state.wallet_id)
    if wallet is None:
        return [_reject(state.wallet_id, item, "unknown_wallet", state.wallet_id)], state
    refused = admission(catalog, state.wallet_id, item)
    if refused is not None:
        return [_reject(state.wallet_id, item, *refused)], state
    d = _Decision(state, item.key, catalog, wallet)
    if isinstance(item, Cdr):
        _decide_cdr(d, item)
    else:
        _decide_command(d, item)
    return d.events, d.state


def decide(state: WalletState, item: Input, catalog: Catalog) -> list[Event]:
    return step(state, item, catalog)[0]


def _reject(wallet_id: str, item: Input, reason: str, detail: str) -> Event:
    eid = f"{item.key}#{reason}"
    if isinstance(item, Cdr):
        return CdrRejected(
            eid, wallet_id, item.started_at, item.cdr_id, item.iccid, reason, detail, item.source
        )
    return CommandRejected(
        eid, wallet_id, item.at, item.command_id, type(item).__name__, reason, detail
    )


def _open(d: _Decision, at: datetime) -> None:
    if d.state.opened:
        return
    grants = tuple(
        GrantInfo(
            f"open:{d.wallet.id}/{i}",
            g.kind,
            g.amount,
            g.priority,
            None if g.expires_at is None else datetime.fromtimestamp(g.expires_at, UTC),
        )
        for i, g in enumerate(d.wallet.opening)
    )
    d.emit(
        WalletOpened(
            f"open:{d.wallet.id}#0",
            d.wallet.id,
            at,
            d.wallet.currency,
            d.catalog.dedup_window,
            grants,
        )
    )


def _expire(d: _Decision, at: datetime, ts: int) -> None:
    for g in expired(d.state, ts):
        d.emit(GrantExpired(d.next_id(), d.wallet.id, at, g.id, g.remaining))


# -- charges and their consequences ------------------------------------------------------


def _charge(
    d: _Decision,
    at: datetime,
    ts: int,
    kind: str,
    ref: str,
    amount: int,
    shares: tuple[Share, ...],
    cycle: str | None = None,
    source_wallet: str | None = None,
    cdr_id: str | None = None,
) -> None:
    debits, overdraft, uncollected, grants = settle(d.state, amount, ts, d.wallet.overdraft_limit)
    event = Charged(
        d.next_id(),
        d.wallet.id,
        at,
        kind,
        ref,
        amount,
        cycle,
        debits,
        overdraft,
        uncollected,
        splits(shares, amount),
        source_wallet,
        cdr_id,
    )
    d.emit_applied(event, charged(d.state, event, grants))
    _after_debit(d, at, ts)


def _after_debit(d: _Decision, at: datetime, ts: int) -> None:
    """Warn on thresholds crossed, ask for auto top-up, suspend at the suspension level."""
    balance = d.state.balance
    for level in d.wallet.thresholds:
        if balance < level and level not in d.state.fired:
            d.emit(ThresholdCrossed(d.next_id(), d.wallet.id, at, level, balance))
    auto = d.wallet.auto_top_up
    if auto is not None and balance < auto.below and not d.state.auto_top_up_fired:
        d.emit(AutoTopUpRequested(d.next_id(), d.wallet.id, at, auto.amount, balance))
    if not d.state.suspended and balance <= d.wallet.suspend_at:
        d.emit(WalletSuspended(d.next_id(), d.wallet.id, at, balance))
        d.emit(BarSims(d.next_id(), d.wallet.id, at, active_iccids(d.state, d.catalog, ts)))


def _credit(
    d: _Decision,
    at: datetime,
    ts: int,
    kind: str,
    amount: int,
    priority: int,
    expires_at: datetime | None,
    voucher: str | None = None,
) -> None:
    _begin(d, at, ts)
    state = d.state
    new_balance = state.balance + amount
    rearmed = tuple(level for level in sorted(state.fired, reverse=True) if new_balance >= level)
    auto = d.wallet.auto_top_up
    auto_rearmed = state.auto_top_up_fired and auto is not None and new_balance >= auto.below
    grant = GrantInfo(d.next_id(), kind, amount, priority, expires_at)
    d.emit(
        GrantAdded(
            grant.grant_id,
            d.wallet.id,
            at,
            grant,
            min(state.debt, amount),
            voucher,
            rearmed,
            auto_rearmed,
        )
    )
    if d.state.suspended and d.state.balance > d.wallet.resume_at:
        _resume(d, at, ts)


def _resume(d: _Decision, at: datetime, ts: int) -> None:
    d.emit(WalletResumed(d.next_id(), d.wallet.id, at, d.state.balance))
    iccids = active_iccids(d.state, d.catalog, ts)
    d.emit(UnbarSims(d.next_id(), d.wallet.id, at, iccids))
    for iccid in iccids:
        sub = sim(d.state, d.catalog, iccid)
        plan = d.catalog.plans.get(plan_at(d.state, sub, ts)) if sub else None
        version = plan.version_at(ts) if plan else None
        if version is not None and version.restart_fee:
            shares = version.fee_splits or version.mrc_splits
            _charge(d, at, ts, "restart_fee", iccid, version.restart_fee, shares)
    _after_debit(d, at, ts)


# -- usage -------------------------------------------------------------------------------


def _decide_cdr(d: _Decision, cdr: Cdr) -> None:
    state = d.state
    at = cdr.started_at
    if state.has_seen(d.key):
        d.emit(_reject(d.wallet.id, cdr, "duplicate", "CDR already rated"))
        return
    ts = int(at.timestamp())
    if ts < state.retained_since:
        detail = "older than the duplicate-detection window"
        d.emit(_reject(d.wallet.id, cdr, "late", detail))
        return
    try:
        found = _resolve(d, cdr, ts)
        _open(d, at)
        if d.state.grants:
            _expire(d, at, ts)
        _rate(d, cdr, ts, found)
    except _Unrateable as problem:
        # A rejected input decides nothing else (no opening, no expiry, no pool step), and
        # its one event is named by its reason: a later, accepted retry can never reuse an id.
        d.events.clear()
        d.state = state
        d.emit(_reject(d.wallet.id, cdr, problem.reason, problem.detail))


class _Unrateable(Exception):
    """Why a CDR cannot be rated: the reason and detail of its ``CdrRejected``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


_Resolved = tuple[Subscription, str, PlanVersion, str, Rate, Filter | None]
"""What a CDR is rated by: subscription, plan id, plan version, zone, rate, and the filter
that chose the rate (a plain tuple: one is built for every record)."""


def _resolve(d: _Decision, cdr: Cdr, ts: int) -> _Resolved:
    """Everything a CDR is rated by; raises ``_Unrateable`` when it cannot be rated."""
    catalog, state = d.catalog, d.state
    if cdr.volume < 0:
        raise _Unrateable("negative_volume", f"volume {cdr.volume}")
    too_much = volume_problem(catalog.limits, cdr.service, cdr.volume)
    if too_much is not None:
        raise _Unrateable("volume_over_limit", too_much)
    sub = sim(state, catalog, cdr.iccid)
    if sub is None:
        raise _Unrateable("unknown_sim", f"ICCID {cdr.iccid} is not in wallet {d.wallet.id}")
    if not active_at(sub, ts):
        raise _Unrateable(
            "sim_inactive", f"ICCID {cdr.iccid} is not active at {cdr.started_at.isoformat()}"
        )
    plan_id = plan_at(state, sub, ts)
    plan = catalog.plans.get(plan_id)
    version = plan.version_at(ts) if plan else None
    if plan is None or version is None:
        raise _Unrateable(
            "no_plan_version",
            f"plan {plan_id} has no version valid at {cdr.started_at.isoformat()}",
        )
    zone = zone_of(catalog.networks, cdr.mcc, cdr.mnc)
    if zone is None:
        raise _Unrateable("unknown_zone", f"network {cdr.mcc}-{cdr.mnc} is in no zone")
    table = _rate_table(catalog, plan_id, version)
    rate, matched = table.select(cdr.service, zone, cdr.apn, cdr.rat, cdr.started_at)
    if rate is None:
        raise _Unrateable(
            "no_rate", f"plan {plan_id} v{version.version} has no {cdr.service} rate in {zone}"
        )
    if version.currency != d.wallet.currency:
        raise _Unrateable("currency_mismatch", f"plan {plan_id} is in {version.currency}")
    return sub, plan_id, version, zone, rate, matched


def _rate_table(catalog: Catalog, plan_id: str, version: PlanVersion) -> rating.RateTable:
    """The version's rate table, kept in the catalog's memo (a plan's version numbers are
    unique, so plan id and number name it)."""
    key = ("rates", plan_id, version.version)
    table = catalog.memo.get(key)
    if table is None:
        table = catalog.memo[key] = rating.RateTable(version)
    return table


def _rate(d: _Decision, cdr: Cdr, ts: int, found: _Resolved) -> None:
    sub, plan_id, version, zone, rate, matched = found
    wallet = d.wallet
    service = cdr.service
    rounding = version.rounding.get(service)
    rated_volume = rating.rounded(cdr.volume, rounding) if rounding else cdr.volume
    cycle = cycle_of(ts, wallet.cycle_anchor_day)
    if sub.pool is None:
        drawn = pools.NO_DRAW
    else:
        drawn = _draw_pool(d, sub.pool, cdr, zone, cycle, ts, rated_volume)
    charged_volume = rated_volume - drawn.volume
    state = d.state  # after any pool step-up and its charge
    # the cycle's volume so far only matters to graduated tiers
    used = state.tier_used.get((cdr.iccid, service, cycle.id), 0) if len(rate.tiers) > 1 else 0
    amount = rating.price(rate, used, charged_volume)
    if amount > d.catalog.limits.max_charge:
        raise _Unrateable(
            "amount_over_limit",
            f"charge {amount} is over the limit of {d.catalog.limits.max_charge} per input",
        )
    payer = matched.payer if matched is not None and matched.payer else wallet.id
    lines = splits(version.usage_splits, amount)
    if payer == wallet.id:
        debits, overdraft, uncollected, grants = settle(state, amount, ts, wallet.overdraft_limit)
    else:
        debits, overdraft, uncollected, grants = (), 0, 0, state.grants
    event = UsageRated(
        d.next_id(),
        wallet.id,
        cdr.started_at,
        cdr.cdr_id,
        cdr.iccid,
        service,
        zone,
        cdr.volume,
        rated_volume,
        drawn.volume,
        charged_volume,
        amount,
        plan_id,
        version.version,
        cycle.id,
        payer,
        cdr.source,
        matched.name if matched is not None else None,
        drawn.draws,
        debits,
        overdraft,
        uncollected,
        lines,
    )
    d.emit_applied(event, usage_rated(state, event, d.key, ts, grants))
    if payer == wallet.id and amount:
        _after_debit(d, cdr.started_at, ts)


def _draw_pool(
    d: _Decision, pool_id: str | None, cdr: Cdr, zone: str, cycle: Cycle, ts: int, volume: int
) -> pools.Draw:
    pool = d.catalog.pools.get(pool_id) if pool_id else None
    if pool is None or not pools.covers(pool, cdr.service, zone):
        return pools.NO_DRAW
    members = pool_sims(d.state, d.catalog, pool, cycle) if pool.kind == "flexible" else 0
    drawn = pools.draw(d.state, pool, cycle, ts, volume, members)
    if drawn.step is not None:
        at = cdr.started_at
        d.emit(
            PoolStepped(
                d.next_id(), d.wallet.id, at, pool.id, cycle.id, drawn.step.tier, drawn.step.size
            )
        )
        if drawn.step.price:
            _charge(d, at, ts, "pool_step", pool.id, drawn.step.price, pool.splits, cycle.id)
    return drawn


# -- commands ----------------------------------------------------------------------------


def _decide_command(d: _Decision, cmd: Command) -> None:
    if d.key in d.state.commands:
        return  # a retried command that already moved money: a no-op, so retries are safe
    at = cmd.at
    ts = int(at.timestamp())
    match cmd:
        case Tick():
            _begin(d, at, ts)
            _tick(d, at, ts)
            return
        case TopUp():
            problem = _top_up(d, cmd, ts)
        case RedeemVoucher():
            problem = _redeem(d, cmd, ts)
        case ChangePlan():
            problem = _change_plan(d, cmd, ts)
        case AttachSim():
            problem = _attach(d, cmd, ts)
        case DetachSim():
            sub = sim(d.state, d.catalog, cmd.iccid)
            if sub is None or not active_at(sub, ts):
                problem = (
                    "unknown_sim",
                    f"ICCID {cmd.iccid} is not active in wallet {d.wallet.id}",
                )
            else:
                _begin(d, at, ts)
                d.emit(SimDetached(d.next_id(), d.wallet.id, at, cmd.iccid))
                problem = None
        case ApplyCharge():
            if cmd.amount < 0:
                problem = ("invalid_amount", f"amount {cmd.amount} is negative")
            elif cmd.amount > d.catalog.limits.max_charge:
                problem = ("amount_over_limit", _over(cmd.amount, d.catalog.limits.max_charge))
            else:
                _begin(d, at, ts)
                _charge(
                    d,
                    at,
                    ts,
                    "routed_usage",
                    cmd.source_wallet,
                    cmd.amount,
                    (),
                    cycle_of(ts, d.wallet.cycle_anchor_day).id,
                    cmd.source_wallet,
                    cmd.cdr_id,
                )
                problem = None
        case AdjustRating():
            problem = _adjust(d, cmd, ts)
    if problem is not None:
        d.emit(_reject(d.wallet.id, cmd, problem[0], problem[1]))


def _begin(d: _Decision, at: datetime, ts: int) -> None:
    """What every accepted input starts with: open the wallet, expire what is due."""
    _open(d, at)
    _expire(d, at, ts)


def _adjust(d: _Decision, cmd: AdjustRating, ts: int) -> tuple[str, str] | None:
    """A replay's correction of one CDR: charge a positive difference like any charge (with
    its thresholds and suspension), credit a negative one as a refund grant."""
    if abs(cmd.amount) > d.catalog.limits.max_charge:
        return "amount_over_limit", _over(abs(cmd.amount), d.catalog.limits.max_charge)
    total = sum(amount for _, amount in cmd.splits)
    if total != cmd.amount:
        return "invalid_amount", f"split lines sum to {total}, not to the amount {cmd.amount}"
    at = cmd.at
    _begin(d, at, ts)
    debits: tuple = ()
    overdraft = uncollected = repaid = 0
    credit = None
    if cmd.amount > 0:
        debits, overdraft, uncollected, _ = settle(
            d.state, cmd.amount, ts, d.wallet.overdraft_limit
        )
    elif cmd.amount < 0:
        refund = -cmd.amount
        credit = GrantInfo(d.next_id(), "refund", refund, DEFAULT_PRIORITY["refund"])
        repaid = min(d.state.debt, refund)
    d.emit(
        RatingAdjusted(
            d.next_id(),
            d.wallet.id,
            at,
            cmd.cdr_id,
            cmd.iccid,
            cmd.service,
            cmd.zone,
            cmd.replay,
            cmd.amount,
            cmd.charged_volume,
            cmd.plan_version,
            tuple([SplitLine(provider, amount) for provider, amount in cmd.splits if amount]),
            cmd.source_wallet,
            debits,
            overdraft,
            uncollected,
            credit,
            repaid,
        )
    )
    if cmd.amount > 0:
        _after_debit(d, at, ts)
    return None


def _top_up(d: _Decision, cmd: TopUp, ts: int) -> tuple[str, str] | None:
    try:
        amount = parse_money(cmd.amount)
    except MoneyError as exc:
        return "invalid_amount", str(exc)
    if amount <= 0:
        return "invalid_amount", f"amount {cmd.amount} is not positive"
    limits = d.catalog.limits
    if amount > limits.max_amount:
        return "amount_over_limit", _over(amount, limits.max_amount)
    if cmd.currency != d.wallet.currency:
        return "currency_mismatch", f"wallet is in {d.wallet.currency}, top-up in {cmd.currency}"
    if cmd.expires_at is not None and cmd.expires_at <= cmd.at:
        return "invalid_expiry", "the grant would expire before it is added"
    if cmd.expires_at is not None and cmd.expires_at.timestamp() >= limits.latest:
        return "invalid_expiry", f"the grant would expire after {_iso(limits.latest)}"
    priority = DEFAULT_PRIORITY[cmd.kind] if cmd.priority is None else cmd.priority
    if not limits.min_priority <= priority <= limits.max_priority:
        return (
            "invalid_priority",
            f"priority {priority} is outside {limits.min_priority}..{limits.max_priority}",
        )
    _credit(d, cmd.at, ts, cmd.kind, amount, priority, cmd.expires_at)
    return None


def _redeem(d: _Decision, cmd: RedeemVoucher, ts: int) -> tuple[str, str] | None:
    voucher = d.catalog.vouchers.get(cmd.code)
    if voucher is None:
        return "unknown_voucher", f"no voucher {cmd.code}"
    if voucher.wallet != d.wallet.id:
        return "voucher_not_for_wallet", f"voucher {cmd.code} was issued to another wallet"
    if cmd.code in d.state.vouchers:
        return "voucher_already_redeemed", f"voucher {cmd.code} was already redeemed"
    if voucher.valid_until is not None and ts > voucher.valid_until:
        return (
            "voucher_expired",
            f"voucher {cmd.code} could be redeemed until {_iso(voucher.valid_until)}",
        )
    expires = None
    if voucher.grant_days is not None:
        expires = datetime.fromtimestamp(ts + voucher.grant_days * 86400, UTC)
    _credit(d, cmd.at, ts, "voucher", voucher.amount, voucher.priority, expires, voucher.code)
    return None


def _over(amount: int, limit: int) -> str:
    return f"amount {amount} micro-units is over the limit of {limit}"


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _check_plan(d: _Decision, plan_id: str, ts: int) -> tuple[str, str] | None:
    plan = d.catalog.plans.get(plan_id)
    if plan is None:
        return "unknown_plan", f"no plan {plan_id}"
    version = plan.version_at(ts)
    if version is None:
        return "no_plan_version", f"plan {plan_id} has no version valid at {_iso(ts)}"
    if version.currency != d.wallet.currency:
        return "currency_mismatch", f"plan {plan_id} is in {version.currency}"
    return None


def _change_plan(d: _Decision, cmd: ChangePlan, ts: int) -> tuple[str, str] | None:
    sub = sim(d.state, d.catalog, cmd.iccid)
    if sub is None or (sub.active_to is not None and sub.active_to <= ts):
        return "unknown_sim", f"ICCID {cmd.iccid} is not in wallet {d.wallet.id}"
    problem = _check_plan(d, cmd.plan, ts)
    if problem is None:
        _begin(d, cmd.at, ts)
        d.emit(PlanChanged(d.next_id(), d.wallet.id, cmd.at, cmd.iccid, cmd.plan))
    return problem


def _attach(d: _Decision, cmd: AttachSim, ts: int) -> tuple[str, str] | None:
    current = sim(d.state, d.catalog, cmd.iccid)
    if current is not None and active_at(current, ts):
        return "sim_already_attached", f"ICCID {cmd.iccid} is already in wallet {d.wallet.id}"
    problem = _check_plan(d, cmd.plan, ts)
    if problem is not None:
        return problem
    if cmd.pool is not None:
        pool = d.catalog.pools.get(cmd.pool)
        if pool is None or pool.wallet != d.wallet.id:
            return "unknown_pool", f"wallet {d.wallet.id} has no pool {cmd.pool}"
    _begin(d, cmd.at, ts)
    d.emit(SimAttached(d.next_id(), d.wallet.id, cmd.at, cmd.iccid, cmd.plan, cmd.pool, cmd.addons))
    return None


def _tick(d: _Decision, at: datetime, ts: int) -> None:
    """Recurring charges due by ``ts``: each exactly once per cycle, catching up at most
    ``MAX_CATCH_UP`` cycles; a SIM or pool never charged before starts with this cycle."""
    anchor = d.wallet.cycle_anchor_day
    now = cycle_of(ts, anchor)

    def due(ref: str) -> list[Cycle]:
        last = d.state.recurring.get(ref)
        if last == now.id:
            return []
        first = now if last is None else next_cycle(cycle_of(_parse_day(last), anchor), anchor)
        return cycles_between(first, now, anchor)[-MAX_CATCH_UP:]

    for sub in wallet_sims(d.state, d.catalog):
        for cycle in due(sub.iccid):
            version = _version_in(d, sub, cycle)
            if version is not None and version.mrc:
                _charge(d, at, ts, "mrc", sub.iccid, version.mrc, version.mrc_splits, cycle.id)
        for addon_id in sub.addons:
            ref = f"{sub.iccid}/{addon_id}"
            for cycle in due(ref):
                version = _version_in(d, sub, cycle)
                addon = version.addons.get(addon_id) if version is not None else None
                if addon is not None and addon.mrc:
                    _charge(d, at, ts, "addon_mrc", ref, addon.mrc, addon.splits, cycle.id)
    for pool_id in d.catalog.pools_by_wallet.get(d.wallet.id, ()):
        pool = d.catalog.pools[pool_id]
        fee = pool.tiers[0].price if pool.kind == "adaptive" and pool.tiers else pool.price
        if not fee:
            continue
        for cycle in due(f"pool:{pool.id}"):
            _charge(d, at, ts, "pool_fee", f"pool:{pool.id}", fee, pool.splits, cycle.id)


def _parse_day(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


def _version_in(d: _Decision, sub: Subscription, cycle: Cycle) -> PlanVersion | None:
    """The plan version a SIM's recurring charge for ``cycle`` is taken by (None: not active)."""
    if not active_in(sub, cycle):
        return None
    when = max(cycle.start, sub.active_from)
    plan = d.catalog.plans.get(plan_at(d.state, sub, when))
    return plan.version_at(when) if plan else None
