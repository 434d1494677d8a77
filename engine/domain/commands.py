"""Commands: what operators, the payment system and the clock ask of a wallet."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from .ids import command_key

PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
"""Identifiers and names carry no control characters (NUL included): a database, a log
line or a terminal would each read them differently."""
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=PRINTABLE)]
Name = Annotated[str, msgspec.Meta(max_length=256, pattern=PRINTABLE)]
When = Annotated[datetime, msgspec.Meta(tz=True)]


class _Command(msgspec.Struct, frozen=True, gc=False, tag_field="type"):
    command_id: Id
    wallet_id: Id
    at: When

    @property
    def key(self) -> str:
        return command_key(self.command_id)


class TopUp(_Command, tag=True, frozen=True, gc=False):
    """Credit the wallet. ``amount`` is a decimal string in ``currency``."""

    amount: Annotated[str, msgspec.Meta(max_length=64)]
    currency: Name
    kind: Literal["top_up", "promotion", "refund"] = "top_up"
    priority: int | None = None
    expires_at: When | None = None


class RedeemVoucher(_Command, tag=True, frozen=True, gc=False):
    code: Id


class Tick(_Command, tag=True, frozen=True, gc=False):
    """The clock: expire grants and take recurring charges due at ``at``."""


class ChangePlan(_Command, tag=True, frozen=True, gc=False):
    """Move a SIM to another plan from ``at`` on."""

    iccid: Id
    plan: Id


class AttachSim(_Command, tag=True, frozen=True, gc=False):
    """Add a SIM to this wallet from ``at`` on (a new SIM, or one moved from another wallet)."""

    iccid: Id
    plan: Id
    pool: Id | None = None
    addons: tuple[Id, ...] = ()


class DetachSim(_Command, tag=True, frozen=True, gc=False):
    """Take a SIM out of this wallet from ``at`` on."""

    iccid: Id


class ApplyCharge(_Command, tag=True, frozen=True, gc=False):
    """Debit a charge rated in another wallet whose plan routes it here (split billing)."""

    source_wallet: Id
    cdr_id: Id
    amount: int


class AdjustRating(_Command, tag=True, frozen=True, gc=False):
    """Correct a CDR's charge after a replay with another catalog; ``wallet_id`` pays.

    ``amount``, ``charged_volume`` and the ``splits`` lines ``(provider, amount)`` are signed
    differences, new minus old, and the lines sum exactly to ``amount``. ``source_wallet``
    names the wallet that rated the CDR when it is not the paying one (split billing).
    """

    cdr_id: Id
    iccid: Id
    service: Name
    zone: Name
    replay: Name
    amount: int
    charged_volume: int
    plan_version: int
    splits: tuple[tuple[Name, int], ...]
    source_wallet: Id | None = None


class WriteOffDebt(_Command, tag=True, frozen=True, gc=False):
    """Forgive debt the wallet owes: ``amount`` (a decimal string; all of it when absent),
    for a stated ``reason``. Debt is never written off any other way."""

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=PRINTABLE)]
    amount: Annotated[str, msgspec.Meta(max_length=64)] | None = None


Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=PRINTABLE)]
Amount = Annotated[str, msgspec.Meta(max_length=64)]


class OpenWallet(_Command, tag=True, frozen=True, gc=False):
    """Open a wallet that is not in the catalog, on these terms. Amounts are decimal strings
    in ``currency``, as in a catalog; ``revision`` is the catalog revision it starts on
    (0: the first), stamped by whoever sends it so every owner starts it alike."""

    currency: Name
    name: Name = ""
    overdraft_limit: Amount = "0"
    suspend_at: Amount = "0"
    resume_at: Amount = "0"
    thresholds: tuple[Amount, ...] = ()
    cycle_anchor_day: Annotated[int, msgspec.Meta(ge=1, le=28)] = 1
    revision: Annotated[int, msgspec.Meta(ge=0)] = 0


class CloseWallet(_Command, tag=True, frozen=True, gc=False):
    """Close the wallet from ``at`` on: nothing is decided for it afterwards. Refused while
    a SIM is still in it."""

    reason: Reason


class SuspendWallet(_Command, tag=True, frozen=True, gc=False):
    """Suspend the wallet by hand (bar its SIMs), whatever its balance, until a
    ``ResumeWallet``; a top-up does not lift it."""

    reason: Reason


class ResumeWallet(_Command, tag=True, frozen=True, gc=False):
    """Lift a suspension by hand; the wallet resumes if its balance allows."""

    reason: Reason


class AdoptCatalog(_Command, tag=True, frozen=True, gc=False):
    """Decide this wallet's inputs from now on with catalog revision ``revision`` (whose
    source has sha256 ``digest``), sent to every wallet by ``catalog publish``."""

    revision: Annotated[int, msgspec.Meta(ge=1)]
    digest: Id


Command = (
    TopUp
    | RedeemVoucher
    | Tick
    | ChangePlan
    | AttachSim
    | DetachSim
    | ApplyCharge
    | AdjustRating
    | WriteOffDebt
    | OpenWallet
    | CloseWallet
    | SuspendWallet
    | ResumeWallet
    | AdoptCatalog
)
COMMAND_TYPES: tuple[type, ...] = (
    TopUp,
    RedeemVoucher,
    Tick,
    ChangePlan,
    AttachSim,
    DetachSim,
    ApplyCharge,
    AdjustRating,
    WriteOffDebt,
    OpenWallet,
    CloseWallet,
    SuspendWallet,
    ResumeWallet,
    AdoptCatalog,
)
