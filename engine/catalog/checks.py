"""Checks across sections: a subscription against its wallet, plan, pool and add-ons."""

from __future__ import annotations

from engine.domain.catalog import Plan, Pool, Wallet

from .reader import Ctx, Fields
from .values import hint


def check_subscription(
    ctx: Ctx,
    f: Fields,
    wallet_id: str | None,
    wallet: Wallet | None,
    plan: Plan | None,
    pool: Pool | None,
    addons: list[tuple[str, str]],
) -> None:
    """Report what makes a subscription unrateable even though each id it names exists."""
    if wallet is not None and plan is not None:
        # Charges are debited as they are priced: no conversion between currencies.
        for version in plan.versions:
            if version.currency != wallet.currency:
                ctx.issue(
                    f.at("plan"),
                    f"plan '{plan.id}' version {version.version} is in {version.currency}, "
                    f"but wallet '{wallet.id}' is in {wallet.currency}",
                )
    if pool is not None and wallet_id is not None and pool.wallet != wallet_id:
        ctx.issue(
            f.at("pool"),
            f"pool '{pool.id}' belongs to wallet '{pool.wallet}', not to '{wallet_id}'",
        )
    if (
        pool is not None
        and plan is not None
        and not any(pool.service in version.rates for version in plan.versions)
    ):
        ctx.issue(
            f.at("pool"),
            f"pool '{pool.id}' covers {pool.service}, which plan '{plan.id}' has no rates for",
        )
    if plan is not None:
        offered = sorted({name for version in plan.versions for name in version.addons})
        for path, addon in addons:
            if addon not in offered:
                ctx.issue(path, f"plan '{plan.id}' has no addon '{addon}'{hint(addon, offered)}")
