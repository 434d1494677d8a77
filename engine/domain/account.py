"""Commands to a wallet: credit (top-ups, vouchers), routed and corrected charges, and the
SIMs and plans it holds. Each check that fails raises `Refused`; a command already decided
is a no-op, so a retried command moves nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime

from .catalog import DEFAULT_PRIORITY
from .charges import after_debit, begin, charge, credit
from .closing import close_pools
from .commands import (
    AdjustRating,
    AdoptCatalog,
    ApplyCharge,
    AttachSim,
    ChangePlan,
    CloseWallet,
    Command,
    DetachSim,
    OpenWallet,
    RedeemVoucher,
    ResumeWallet,
    SuspendWallet,
    Tick,
    TopUp,
    WriteOffDebt,
)
from .cycles import cycle_of
from .dedup import answered, duplicate, late
from .draft import Draft
from .events import (
    DebtWrittenOff,
    GrantInfo,
    PlanChanged,
    RatingAdjusted,
    SimAttached,
    SimDetached,
    SplitLine,
)
from .grants import settle
from .limits import volume_problem
from .money import MoneyError, parse_money
from .provisioning import adopt, close, hold, open_by_command, release
from .recurring import tick
from .refusal import Refused
from .sims import sim, sim_at


def decide_command(d: Draft, cmd: Command, ts: int) -> None:
    """``ts``: the command's instant in epoch seconds (``limits.admit``)."""
    if answered(d.state, d.key):
        return  # a retried command that already moved money: a no-op, so retries are safe
    match cmd:
        case Tick():
            begin(d, cmd.at, ts)
            tick(d, cmd.at, ts)
            close_pools(d, cmd.at, ts)
        case TopUp():
            top_up(d, cmd, ts)
        case RedeemVoucher():
            redeem(d, cmd, ts)
        case ChangePlan():
            change_plan(d, cmd, ts)
        case AttachSim():
            attach(d, cmd, ts)
        case DetachSim():
            detach(d, cmd, ts)
        case ApplyCharge():
            apply_charge(d, cmd, ts)
        case AdjustRating():
            adjust(d, cmd, ts)
        case WriteOffDebt():
            write_off(d, cmd, ts)
        case OpenWallet():
            open_by_command(d, cmd, ts)
        case CloseWallet():
            close(d, cmd, ts)
        case SuspendWallet():
            hold(d, cmd, ts)
        case ResumeWallet():
            release(d, cmd, ts)
        case AdoptCatalog():
            adopt(d, cmd, ts)


def top_up(d: Draft, cmd: TopUp, ts: int) -> None:
    amount = positive_amount(cmd.amount)
    limits = d.catalog.limits
    if amount > limits.max_amount:
        raise Refused("amount_over_limit", _over(amount, limits.max_amount))
    if cmd.currency != d.wallet.currency:
        raise Refused(
            "currency_mismatch", f"wallet is in {d.wallet.currency}, top-up in {cmd.currency}"
        )
    if cmd.expires_at is not None and cmd.expires_at <= cmd.at:
        raise Refused("invalid_expiry", "the grant would expire before it is added")
    if cmd.expires_at is not None and cmd.expires_at.timestamp() >= limits.latest:
        raise Refused("invalid_expiry", f"the grant would expire after {_iso(limits.latest)}")
    priority = DEFAULT_PRIORITY[cmd.kind] if cmd.priority is None else cmd.priority
    if not limits.min_priority <= priority <= limits.max_priority:
        raise Refused(
            "invalid_priority",
            f"priority {priority} is outside {limits.min_priority}..{limits.max_priority}",
        )
    credit(d, cmd.at, ts, cmd.kind, amount, priority, cmd.expires_at)


def redeem(d: Draft, cmd: RedeemVoucher, ts: int) -> None:
    voucher = d.catalog.vouchers.get(cmd.code)
    if voucher is None:
        raise Refused("unknown_voucher", f"no voucher {cmd.code}")
    if voucher.wallet != d.wallet.id:
        raise Refused("voucher_not_for_wallet", f"voucher {cmd.code} was issued to another wallet")
    if cmd.code in d.state.vouchers:
        raise Refused("voucher_already_redeemed", f"voucher {cmd.code} was already redeemed")
    if voucher.valid_until is not None and ts > voucher.valid_until:
        raise Refused(
            "voucher_expired",
            f"voucher {cmd.code} could be redeemed until {_iso(voucher.valid_until)}",
        )
    expires = None
    if voucher.grant_days is not None:
        expires = datetime.fromtimestamp(ts + voucher.grant_days * 86400, UTC)
    credit(d, cmd.at, ts, "voucher", voucher.amount, voucher.priority, expires, voucher.code)


def apply_charge(d: Draft, cmd: ApplyCharge, ts: int) -> None:
    """The debit of usage rated in ``source_wallet`` and paid here (split billing). One
    older than the dedup window here is refused as ``late``, as a CDR would be: the keys of
    routed charges are remembered in the dedup generations, as CDR keys are (``evolve``)."""
    if duplicate(d.state, d.key):
        return  # a retry: a no-op, as for any command that moved money
    if late(d.state, ts):
        # Its key may have gone with the dedup generation that covered its instant: a
        # retry could no longer be told from a first charge.
        raise Refused("late", "older than the duplicate-detection window")
    if cmd.amount < 0:
        raise Refused("invalid_amount", f"amount {cmd.amount} is negative")
    if cmd.amount > d.catalog.limits.max_charge:
        raise Refused("amount_over_limit", _over(cmd.amount, d.catalog.limits.max_charge))
    begin(d, cmd.at, ts)
    cycle = cycle_of(ts, d.wallet.cycle_anchor_day).id
    source = cmd.source_wallet
    charge(d, cmd.at, ts, "routed_usage", source, cmd.amount, (), cycle, source, cmd.cdr_id)


def adjust(d: Draft, cmd: AdjustRating, ts: int) -> None:
    """A replay's correction of one CDR: charge a positive difference like any charge (with
    its thresholds and suspension), credit a negative one as a refund grant."""
    if abs(cmd.amount) > d.catalog.limits.max_charge:
        raise Refused("amount_over_limit", _over(abs(cmd.amount), d.catalog.limits.max_charge))
    too_much = volume_problem(d.catalog.limits, cmd.service, abs(cmd.charged_volume))
    if too_much is not None:
        raise Refused("volume_over_limit", too_much)
    total = sum(amount for _, amount in cmd.splits)
    if total != cmd.amount:
        raise Refused(
            "invalid_amount", f"split lines sum to {total}, not to the amount {cmd.amount}"
        )
    at = cmd.at
    begin(d, at, ts)
    paid = settle(d.state, max(cmd.amount, 0), ts)
    repaid = 0
    refund = None
    if cmd.amount < 0:
        refunded = -cmd.amount
        refund = GrantInfo(d.next_id(), "refund", refunded, DEFAULT_PRIORITY["refund"])
        repaid = min(d.state.debt, refunded)
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
            paid.debits,
            paid.overdraft,
            paid.uncollected,
            refund,
            repaid,
        )
    )
    if cmd.amount > 0:
        after_debit(d, at, ts)


def write_off(d: Draft, cmd: WriteOffDebt, ts: int) -> None:
    """Forgive debt, explicitly: the only way money owed stops being owed."""
    debt = d.state.debt
    if debt <= 0:
        raise Refused("no_debt", f"wallet {d.wallet.id} owes nothing")
    amount = debt
    if cmd.amount is not None:
        amount = positive_amount(cmd.amount)
        if amount > debt:
            raise Refused("invalid_amount", f"amount {amount} is more than the debt of {debt}")
    begin(d, cmd.at, ts)
    d.emit(DebtWrittenOff(d.next_id(), d.wallet.id, cmd.at, amount, cmd.reason))


def change_plan(d: Draft, cmd: ChangePlan, ts: int) -> None:
    sub = sim(d.state, d.catalog, cmd.iccid)
    if sub is None or (sub.active_to is not None and sub.active_to <= ts):
        raise Refused("unknown_sim", f"ICCID {cmd.iccid} is not in wallet {d.wallet.id}")
    check_plan(d, cmd.plan, ts)
    begin(d, cmd.at, ts)
    d.emit(PlanChanged(d.next_id(), d.wallet.id, cmd.at, cmd.iccid, cmd.plan))


def attach(d: Draft, cmd: AttachSim, ts: int) -> None:
    if sim_at(d.state, d.catalog, cmd.iccid, ts) is not None:
        raise Refused(
            "sim_already_attached", f"ICCID {cmd.iccid} is already in wallet {d.wallet.id}"
        )
    check_plan(d, cmd.plan, ts)
    if cmd.pool is not None:
        pool = d.catalog.pools.get(cmd.pool)
        if pool is None or pool.wallet != d.wallet.id:
            raise Refused("unknown_pool", f"wallet {d.wallet.id} has no pool {cmd.pool}")
    begin(d, cmd.at, ts)
    d.emit(SimAttached(d.next_id(), d.wallet.id, cmd.at, cmd.iccid, cmd.plan, cmd.pool, cmd.addons))


def detach(d: Draft, cmd: DetachSim, ts: int) -> None:
    if sim_at(d.state, d.catalog, cmd.iccid, ts) is None:
        raise Refused("unknown_sim", f"ICCID {cmd.iccid} is not active in wallet {d.wallet.id}")
    begin(d, cmd.at, ts)
    d.emit(SimDetached(d.next_id(), d.wallet.id, cmd.at, cmd.iccid))


def check_plan(d: Draft, plan_id: str, ts: int) -> None:
    """Refuse a plan the wallet cannot take at ``ts``."""
    plan = d.catalog.plans.get(plan_id)
    if plan is None:
        raise Refused("unknown_plan", f"no plan {plan_id}")
    version = plan.version_at(ts)
    if version is None:
        raise Refused("no_plan_version", f"plan {plan_id} has no version valid at {_iso(ts)}")
    if version.currency != d.wallet.currency:
        raise Refused("currency_mismatch", f"plan {plan_id} is in {version.currency}")


def positive_amount(text: str) -> int:
    """A command's amount (a decimal string) in micro-units; refused unless above zero.
    Public so that a client (the CLI) can refuse such a command before sending it, by the
    same rule the wallet applies."""
    try:
        amount = parse_money(text)
    except MoneyError as exc:
        raise Refused("invalid_amount", str(exc)) from None
    if amount <= 0:
        raise Refused("invalid_amount", f"amount {text} is not positive")
    return amount


def _over(amount: int, limit: int) -> str:
    return f"amount {amount} micro-units is over the limit of {limit}"


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()
