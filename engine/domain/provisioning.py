"""Provisioning commands: a wallet opened on terms by command, closed, held and released by
hand, and moved to a new catalog revision.

A wallet the catalog does not list exists once an ``OpenWallet`` opened it: its terms ride
on its ``WalletOpened`` (``WalletState.terms``), and it is then decided with a catalog
``Wallet`` made of them (`terms_wallet`), exactly as a catalog wallet. A command that asks
for what the wallet already is (held again, closed again, a catalog revision it already
has, the same terms again) decides nothing, so a resent command is harmless.
"""

from __future__ import annotations

import re

from .catalog import Wallet
from .charges import begin, resume, suspend
from .commands import AdoptCatalog, CloseWallet, OpenWallet, ResumeWallet, SuspendWallet
from .draft import Draft
from .events import CatalogAdopted, WalletClosed, WalletHeld, WalletReleased, WalletTerms
from .money import MoneyError, format_money, parse_money
from .refusal import Refused
from .sims import wallet_sims

CURRENCY = re.compile(r"[A-Z]{3}")
"""An ISO 4217-looking code, as the catalog loader asks of a wallet's currency."""
MAX_MICROS = ((1 << 63) - 1) // 1024
"""Largest amount a wallet's terms may state, in micro-units: the catalog's bound, so sums
of many still fit ``Int64``."""
LISTED = 5
"""ICCIDs a ``wallet_in_use`` refusal names (it gives the count of all)."""


def terms_wallet(wallet_id: str, terms: WalletTerms) -> Wallet:
    """The catalog ``Wallet`` a wallet opened by command is decided with."""
    return Wallet(
        id=wallet_id,
        name=terms.name,
        currency=terms.currency,
        overdraft_limit=terms.overdraft_limit,
        suspend_at=terms.suspend_at,
        resume_at=terms.resume_at,
        thresholds=terms.thresholds,
        cycle_anchor_day=terms.cycle_anchor_day,
    )


def open_terms(cmd: OpenWallet) -> WalletTerms:
    """The command's terms in micro-units, checked as the catalog loader checks a wallet;
    raises `Refused` (``invalid_terms``) naming every problem."""
    problems: list[str] = []

    def amount(field: str, text: str) -> int:
        try:
            micros = parse_money(text)
        except MoneyError as exc:
            problems.append(f"{field}: {exc}")
            return 0
        if abs(micros) > MAX_MICROS:
            problems.append(f"{field}: {text!r} is too large (at most {MAX_MICROS} micro-units)")
        return micros

    if not CURRENCY.fullmatch(cmd.currency):
        problems.append(f"currency: expected 3 capital letters, got {cmd.currency!r}")
    overdraft = amount("overdraft_limit", cmd.overdraft_limit)
    if overdraft < 0:
        problems.append(f"overdraft_limit: cannot be negative: {cmd.overdraft_limit!r}")
    suspend_at = amount("suspend_at", cmd.suspend_at)
    resume_at = amount("resume_at", cmd.resume_at)
    if resume_at == 0 and suspend_at > 0:
        resume_at = suspend_at  # left at 0: the catalog's default, suspend_at
    if suspend_at < -max(overdraft, 0):
        problems.append(
            f"suspend_at: must be at or above -overdraft_limit ({format_money(-overdraft)})"
        )
    if resume_at < suspend_at:
        problems.append(f"resume_at: must be at or above suspend_at ({format_money(suspend_at)})")
    levels: list[int] = []
    for i, text in enumerate(cmd.thresholds):
        level = amount(f"thresholds[{i}]", text)
        if level in levels:
            problems.append(f"thresholds[{i}]: {format_money(level)} is listed twice")
        levels.append(level)
    if not 1 <= cmd.cycle_anchor_day <= 28:
        problems.append(f"cycle_anchor_day: must be 1..28, got {cmd.cycle_anchor_day}")
    if problems:
        raise Refused("invalid_terms", "; ".join(problems))
    return WalletTerms(
        name=cmd.name or cmd.wallet_id,
        currency=cmd.currency,
        overdraft_limit=overdraft,
        suspend_at=suspend_at,
        resume_at=resume_at,
        thresholds=tuple(sorted(set(levels), reverse=True)),
        cycle_anchor_day=cmd.cycle_anchor_day,
    )


def open_by_command(d: Draft, cmd: OpenWallet, ts: int) -> None:
    """Open a wallet the catalog does not list, on the command's terms. A wallet that
    exists (in the catalog, or opened) is refused ``wallet_exists``, unless it was opened
    on these very terms: then the command is a resent one and decides nothing."""
    wallet_id = d.state.wallet_id
    listed = wallet_id in d.catalog.wallets
    if listed or d.state.opened:
        if not listed and d.state.terms is not None and _same_terms(cmd, d.state.terms):
            return
        where = "in the catalog" if listed else "opened already"
        raise Refused("wallet_exists", f"wallet {wallet_id} is {where}")
    begin(d, cmd.at, ts, terms=open_terms(cmd), revision=cmd.revision)


def _same_terms(cmd: OpenWallet, terms: WalletTerms) -> bool:
    try:
        return open_terms(cmd) == terms
    except Refused:
        return False


def close(d: Draft, cmd: CloseWallet, ts: int) -> None:
    """Close the wallet, refused while any of its SIMs is active at ``at`` or later."""
    in_use = [
        s.iccid for s in wallet_sims(d.state, d.catalog) if s.active_to is None or s.active_to > ts
    ]
    if in_use:
        more = ", ..." if len(in_use) > LISTED else ""
        raise Refused(
            "wallet_in_use",
            f"{len(in_use)} SIM(s) are in wallet {d.wallet.id} at or after "
            f"{cmd.at.isoformat()}: {', '.join(in_use[:LISTED])}{more}; detach them first",
        )
    begin(d, cmd.at, ts)
    d.emit(WalletClosed(d.next_id(), d.wallet.id, cmd.at, cmd.reason))


def hold(d: Draft, cmd: SuspendWallet, ts: int) -> None:
    """Suspend by hand: held, and suspended (its SIMs barred) unless the balance had
    suspended it already. Held again: nothing."""
    if d.state.held:
        return
    begin(d, cmd.at, ts)
    d.emit(WalletHeld(d.next_id(), d.wallet.id, cmd.at, cmd.reason))
    if not d.state.suspended:
        suspend(d, cmd.at, ts)


def release(d: Draft, cmd: ResumeWallet, ts: int) -> None:
    """Lift a suspension by hand; the wallet then resumes as after a top-up, if its balance
    allows (else it stays suspended, by its balance). Refused ``not_held`` when no
    suspension by hand is in force."""
    if not d.state.held:
        why = " (it is suspended by its balance: a top-up resumes it)" if d.state.suspended else ""
        raise Refused("not_held", f"wallet {d.wallet.id} is not suspended by hand{why}")
    begin(d, cmd.at, ts)
    d.emit(WalletReleased(d.next_id(), d.wallet.id, cmd.at, cmd.reason))
    if d.state.suspended:
        resume(d, cmd.at, ts)


def adopt(d: Draft, cmd: AdoptCatalog, ts: int) -> None:
    """Move to catalog revision ``cmd.revision`` (the catalog this input is decided with);
    a revision the wallet has, or has passed, decides nothing."""
    if cmd.revision <= d.state.revision:
        return
    begin(d, cmd.at, ts)
    d.emit(CatalogAdopted(d.next_id(), d.wallet.id, cmd.at, cmd.revision, cmd.digest))
