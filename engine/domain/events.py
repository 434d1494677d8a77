"""Events: what happened to a wallet, past tense, as a tagged union of frozen Structs.

Every event carries a deterministic ``id`` (derived from the input it was decided from and
its position in that decision), the ``wallet_id`` it belongs to and the instant ``at`` of the
input. A field added later gets a default, so stored events keep decoding.

``SimsBarred`` and ``SimsUnbarred`` are the network actions: the wallet decided that its SIMs
are barred (or unbarred), and the network acts on it. They travel in the same decision so
that a suspension and its barring cannot be separated.

An event is never renamed in place: stored events keep their names forever. A renamed event
lists its former names in ``FORMER_NAMES``, and the codec reads them as the new one.
"""

from __future__ import annotations

import typing
from datetime import datetime

import msgspec


class Debit(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """An amount taken from one grant."""

    grant_id: str
    amount: int


class SplitLine(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """One provider's part of a charge; the lines of a charge sum exactly to it."""

    provider: str
    amount: int


class PoolDraw(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """Volume drawn from a pool bucket: a cycle id, or a bundle id for stacked pools."""

    pool_id: str
    bucket: str
    volume: int


class GrantInfo(msgspec.Struct, frozen=True, gc=False):
    grant_id: str
    kind: str
    amount: int
    priority: int
    expires_at: datetime | None = None


class _Event(msgspec.Struct, frozen=True, gc=False, tag_field="type", omit_defaults=True):
    id: str
    wallet_id: str
    at: datetime


class WalletTerms(msgspec.Struct, frozen=True, gc=False):
    """A wallet's terms when it was opened by command rather than by the catalog; amounts
    in micro-units of ``currency`` (the catalog's ``Wallet`` fields)."""

    name: str
    currency: str
    overdraft_limit: int = 0
    suspend_at: int = 0
    resume_at: int = 0
    thresholds: tuple[int, ...] = ()
    cycle_anchor_day: int = 1


class WalletOpened(_Event, tag=True, frozen=True, gc=False):
    """The wallet's first decision: its opening grants from the catalog. ``terms`` is set
    when an ``OpenWallet`` command opened it (the catalog does not know it), ``revision``
    is the catalog revision it started on (0: the first)."""

    currency: str
    dedup_window: int
    grants: tuple[GrantInfo, ...] = ()
    terms: WalletTerms | None = None
    revision: int = 0


class WalletClosed(_Event, tag=True, frozen=True, gc=False):
    """Nothing more is decided for the wallet; what it holds stays as it is."""

    reason: str


class WalletHeld(_Event, tag=True, frozen=True, gc=False):
    """Suspended by hand (``SuspendWallet``): no top-up resumes it until it is released."""

    reason: str


class WalletReleased(_Event, tag=True, frozen=True, gc=False):
    """A suspension by hand lifted (``ResumeWallet``); whether the wallet resumes is then
    its balance's business, as after a top-up."""

    reason: str


class CatalogAdopted(_Event, tag=True, frozen=True, gc=False):
    """From this decision on, the wallet is decided with catalog revision ``revision``."""

    revision: int
    digest: str


class UsageRated(_Event, tag=True, frozen=True, gc=False):
    """A CDR priced, with its revenue lines.

    When paid here, ``amount`` = sum(debits) + overdraft + uncollected. When a filter routes
    it to another ``payer`` (split billing) the debit fields stay empty and the payer's
    ``Charged`` of kind ``routed_usage`` moves the money; revenue is counted here only.
    """

    cdr_id: str
    iccid: str
    service: str
    zone: str
    volume: int
    rated_volume: int
    pooled_volume: int
    charged_volume: int
    amount: int
    plan: str
    plan_version: int
    cycle: str
    payer: str
    source: str | None = None
    filter: str | None = None
    draws: tuple[PoolDraw, ...] = ()
    debits: tuple[Debit, ...] = ()
    overdraft: int = 0
    uncollected: int = 0
    splits: tuple[SplitLine, ...] = ()
    tiers_per_zone: bool = False
    """The plan counts graduated tiers per zone (``tier_scope: zone``): this CDR's volume
    counts toward its SIM's tiers in its zone only (``rating.tier_counter``)."""
    overage_pool: str | None = None
    """The pool whose zones and service the record fell in, when the pool left
    ``charged_volume`` to be rated (its overage, which the cycle's close may credit back)."""


class Charged(_Event, tag=True, frozen=True, gc=False):
    """A charge that is not usage: MRC, add-on MRC, pool fee or step-up, restart fee.

    Kind ``routed_usage`` is the debit of usage rated in ``source_wallet`` and paid here:
    its revenue lines stay on that ``UsageRated``, so it has none of its own.
    """

    kind: str
    ref: str
    amount: int
    cycle: str | None = None
    debits: tuple[Debit, ...] = ()
    overdraft: int = 0
    uncollected: int = 0
    splits: tuple[SplitLine, ...] = ()
    source_wallet: str | None = None
    cdr_id: str | None = None


class RatingAdjusted(_Event, tag=True, frozen=True, gc=False):
    """A CDR re-rated with another catalog (replay): the difference, never a rewrite.

    ``amount``, ``charged_volume`` and the ``splits`` lines are signed differences, new minus
    old; the lines sum exactly to ``amount`` (one provider may gain while another loses, and
    a changed split alone gives lines with ``amount`` 0). ``plan_version`` is the version the
    new rating used and ``replay`` names the replay. The money moves in this wallet at ``at``,
    the replay's instant, never in the past: a positive difference is settled like any charge
    (``debits``, ``overdraft``, ``uncollected``); a negative one is credited as the refund
    grant ``credit``, of which ``debt_repaid`` goes straight to the overdraft used. When the
    CDR was rated in another wallet and paid here (split billing), ``source_wallet`` names
    the wallet whose ``UsageRated`` this corrects; the revenue lines are counted on this event
    either way.
    """

    cdr_id: str
    iccid: str
    service: str
    zone: str
    replay: str
    amount: int
    charged_volume: int
    plan_version: int
    splits: tuple[SplitLine, ...]
    source_wallet: str | None = None
    debits: tuple[Debit, ...] = ()
    overdraft: int = 0
    uncollected: int = 0
    credit: GrantInfo | None = None
    debt_repaid: int = 0


class PoolStepped(_Event, tag=True, frozen=True, gc=False):
    """An adaptive pool moved up to a larger tier for the cycle."""

    pool_id: str
    cycle: str
    tier: int
    size: int


class PoolCycleClosed(_Event, tag=True, frozen=True, gc=False):
    """A pool's cycle closed (decided by the first ``Tick`` after the cycle's end).

    ``allowance`` is the cycle's final allowance (a flexible pool's counts every SIM that was
    in it during the cycle), ``used`` what it covered and ``overage`` the volume rated beyond
    it, both after the true-up: ``credited_volume`` of the overage, charged before the
    allowance grew, moved into the pool, and its price comes back as the refund grant
    ``credit`` (of which ``debt_repaid`` went straight to debt), with negative revenue
    lines ``splits`` that sum to minus the credit."""

    pool_id: str = ""
    cycle: str = ""
    kind: str = ""
    allowance: int = 0
    used: int = 0
    overage: int = 0
    overage_amount: int = 0
    """What the overage left after the true-up was charged."""
    credited_volume: int = 0
    credit: GrantInfo | None = None
    debt_repaid: int = 0
    splits: tuple[SplitLine, ...] = ()


class GrantAdded(_Event, tag=True, frozen=True, gc=False):
    """Credit added. ``debt_repaid`` of it went straight to the overdraft used."""

    grant: GrantInfo
    debt_repaid: int = 0
    voucher: str | None = None
    rearmed: tuple[int, ...] = ()
    auto_top_up_rearmed: bool = False


class GrantExpired(_Event, tag=True, frozen=True, gc=False):
    """The unused remainder of a grant expired: breakage revenue."""

    grant_id: str
    amount: int


class ThresholdCrossed(_Event, tag=True, frozen=True, gc=False):
    level: int
    balance: int


class AutoTopUpRequested(_Event, tag=True, frozen=True, gc=False):
    """A request to the payment system; no credit until its ``TopUp`` arrives."""

    amount: int
    balance: int


class WalletSuspended(_Event, tag=True, frozen=True, gc=False):
    balance: int


class WalletResumed(_Event, tag=True, frozen=True, gc=False):
    balance: int


class SimsBarred(_Event, tag=True, frozen=True, gc=False):
    """The wallet's SIMs are barred (it was suspended): a network action. Formerly
    ``BarSims``; events stored under that name decode as this one."""

    iccids: tuple[str, ...]


class SimsUnbarred(_Event, tag=True, frozen=True, gc=False):
    """The wallet's SIMs are unbarred (it was resumed): a network action. Formerly
    ``UnbarSims``; events stored under that name decode as this one."""

    iccids: tuple[str, ...]


class SimAttached(_Event, tag=True, frozen=True, gc=False):
    iccid: str
    plan: str
    pool: str | None = None
    addons: tuple[str, ...] = ()


class SimDetached(_Event, tag=True, frozen=True, gc=False):
    iccid: str


class PlanChanged(_Event, tag=True, frozen=True, gc=False):
    iccid: str
    plan: str


class CdrRejected(_Event, tag=True, frozen=True, gc=False):
    """A CDR the wallet could not rate, with a machine-readable reason."""

    cdr_id: str
    iccid: str
    reason: str
    detail: str = ""
    source: str | None = None


class CommandRejected(_Event, tag=True, frozen=True, gc=False):
    command_id: str
    command: str
    reason: str
    detail: str = ""


class DebtWrittenOff(_Event, tag=True, frozen=True, gc=False):
    """Debt forgiven by an explicit command, with its reason: money that was owed and will
    not be collected. The balance rises by ``amount``; the revenue it was charged as stays
    counted, and the write-off is shown beside it."""

    amount: int
    reason: str


Event = (
    WalletOpened
    | UsageRated
    | Charged
    | RatingAdjusted
    | PoolStepped
    | PoolCycleClosed
    | GrantAdded
    | GrantExpired
    | ThresholdCrossed
    | AutoTopUpRequested
    | WalletSuspended
    | WalletResumed
    | SimsBarred
    | SimsUnbarred
    | SimAttached
    | SimDetached
    | PlanChanged
    | CdrRejected
    | CommandRejected
    | DebtWrittenOff
    | WalletClosed
    | WalletHeld
    | WalletReleased
    | CatalogAdopted
)

EVENT_TYPES: tuple[type, ...] = typing.get_args(Event)
"""The members of ``Event``, in its order."""

NETWORK_ACTIONS: tuple[type, ...] = (SimsBarred, SimsUnbarred)

FORMER_NAMES: dict[str, type] = {"BarSims": SimsBarred, "UnbarSims": SimsUnbarred}
"""Type tags once written and since renamed -> the event they now decode as. Commands are
imperative and events past tense; these two were named like commands until 2026-11."""
