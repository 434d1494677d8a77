"""Money moving through a wallet: charges and credits, and what follows from the balance.

A charge burns grants in order, then the overdraft (``grants.settle``); a credit adds a
grant and re-arms what it lifts the balance above. After either, the wallet's levels are
checked: thresholds, auto top-up, suspension (after a debit) or resumption (after a credit).
"""

from __future__ import annotations

from datetime import UTC, datetime

from .catalog import Share
from .draft import Draft, splits
from .events import (
    AutoTopUpRequested,
    Charged,
    GrantAdded,
    GrantExpired,
    GrantInfo,
    SimsBarred,
    SimsUnbarred,
    ThresholdCrossed,
    WalletOpened,
    WalletResumed,
    WalletSuspended,
    WalletTerms,
)
from .grants import expired, settle
from .ids import opening_grant_id, opening_id, plan_ref
from .sims import active_iccids, plan_at, sim


def begin(
    d: Draft,
    at: datetime,
    ts: int,
    check: bool = True,
    terms: WalletTerms | None = None,
    revision: int = 0,
) -> None:
    """What every accepted input starts with: open the wallet, expire what is due (and,
    unless the caller checks the levels itself later, check them on what that leaves).
    ``terms`` and ``revision``: an ``OpenWallet``'s (see `open_wallet`)."""
    open_wallet(d, at, terms, revision)
    expire(d, at, ts, check)


def open_wallet(
    d: Draft, at: datetime, terms: WalletTerms | None = None, revision: int = 0
) -> None:
    """The wallet's first event: its opening grants from the catalog, or, opened by an
    ``OpenWallet``, the ``terms`` it is decided on from then on (and no grant)."""
    if d.state.opened:
        return
    grants = tuple(
        GrantInfo(
            opening_grant_id(d.wallet.id, i),
            g.kind,
            g.amount,
            g.priority,
            None if g.expires_at is None else datetime.fromtimestamp(g.expires_at, UTC),
        )
        for i, g in enumerate(d.wallet.opening)
    )
    d.emit(
        WalletOpened(
            opening_id(d.wallet.id),
            d.wallet.id,
            at,
            d.wallet.currency,
            d.catalog.dedup_window,
            grants,
            terms,
            revision,
        )
    )


def expire(d: Draft, at: datetime, ts: int, check: bool = True) -> None:
    """Grants due by ``ts`` expire, each at its own instant (``expires_at``), and the levels
    are checked on the balance their expiry leaves, as after any debit (unless ``check`` is
    off: a credit checks them once, on the balance it leaves)."""
    gone = expired(d.state, ts)
    for g in gone:
        when = datetime.fromtimestamp(g.expires_at or ts, UTC)
        d.emit(GrantExpired(d.next_id(), d.wallet.id, when, g.id, g.remaining))
    if gone and check:
        after_debit(d, at, ts)


def charge(
    d: Draft,
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
    paid = settle(d.state, amount, ts)
    event = Charged(
        d.next_id(),
        d.wallet.id,
        at,
        kind,
        ref,
        amount,
        cycle,
        paid.debits,
        paid.overdraft,
        paid.uncollected,
        splits(d.catalog, shares, amount),
        source_wallet,
        cdr_id,
    )
    d.emit(event, paid.grants)
    after_debit(d, at, ts)


def after_debit(d: Draft, at: datetime, ts: int) -> None:
    """Warn on thresholds reached or crossed (``<=``: landing on a level counts), ask for
    auto top-up, suspend at the suspension level."""
    balance = d.state.balance
    for level in d.wallet.thresholds:
        if balance <= level and level not in d.state.fired:
            d.emit(ThresholdCrossed(d.next_id(), d.wallet.id, at, level, balance))
    auto = d.wallet.auto_top_up
    if auto is not None and balance < auto.below and not d.state.auto_top_up_fired:
        d.emit(AutoTopUpRequested(d.next_id(), d.wallet.id, at, auto.amount, balance))
    if not d.state.suspended and balance <= d.wallet.suspend_at:
        suspend(d, at, ts)


def suspend(d: Draft, at: datetime, ts: int) -> None:
    """Suspend the wallet and bar its active SIMs (at the suspension level, or by hand)."""
    d.emit(WalletSuspended(d.next_id(), d.wallet.id, at, d.state.balance))
    d.emit(SimsBarred(d.next_id(), d.wallet.id, at, active_iccids(d.state, d.catalog, ts)))


def credit(
    d: Draft,
    at: datetime,
    ts: int,
    kind: str,
    amount: int,
    priority: int,
    expires_at: datetime | None,
    voucher: str | None = None,
) -> None:
    begin(d, at, ts, check=False)
    state = d.state
    new_balance = state.balance + amount
    rearmed = tuple(level for level in sorted(state.fired, reverse=True) if new_balance > level)
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
    if d.state.suspended:
        resume(d, at, ts)
    else:
        # An expiry this decision made may have left the balance at a level the credit
        # did not lift it from: checked once, here, so no decision bars and unbars.
        after_debit(d, at, ts)


RestartFee = tuple[str, int, tuple[Share, ...]]
"""``(ref, amount, shares)``: a SIM's fee (ref: its ICCID) or a plan's once per wallet
(ref: ``plan:<id>``)."""


def restart_fees(d: Draft, iccids: tuple[str, ...], ts: int) -> list[RestartFee]:
    """The fees a resume now would charge, in the order it charges them."""
    fees: list[RestartFee] = []
    once: set[str] = set()
    for iccid in iccids:
        sub = sim(d.state, d.catalog, iccid)
        if sub is None:
            continue
        plan_id = plan_at(d.state, sub, ts)
        plan = d.catalog.plans.get(plan_id)
        version = plan.version_at(ts) if plan else None
        if version is None or not version.restart_fee:
            continue
        shares = version.restart_fee_splits
        if version.restart_fee_per == "sim":
            fees.append((iccid, version.restart_fee, shares))
        elif plan_id not in once:
            once.add(plan_id)
            fees.append((plan_ref(plan_id), version.restart_fee, shares))
    return fees


def resume(d: Draft, at: datetime, ts: int) -> None:
    """Resume a suspended wallet, all or nothing: only when the balance after its restart
    fees stays above ``resume_at``. Otherwise it stays suspended, keeps the credit, and no
    SIM is unbarred, so no decision ever both unbars and bars a SIM. A wallet held by hand
    (``SuspendWallet``) never resumes here: only its ``ResumeWallet`` releases it."""
    if d.state.held:
        return
    iccids = active_iccids(d.state, d.catalog, ts)
    fees = restart_fees(d, iccids, ts)
    if d.state.balance - sum(amount for _, amount, _ in fees) <= d.wallet.resume_at:
        return
    d.emit(WalletResumed(d.next_id(), d.wallet.id, at, d.state.balance))
    d.emit(SimsUnbarred(d.next_id(), d.wallet.id, at, iccids))
    for ref, amount, shares in fees:
        charge(d, at, ts, "restart_fee", ref, amount, shares)
    after_debit(d, at, ts)
