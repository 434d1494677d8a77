"""Revenue splits: ``{provider id: percent}`` -> ``Share`` weights summing to exactly 100%."""

from __future__ import annotations

from engine.domain.catalog import Share

from .reader import Ctx, Fields
from .values import WHOLE, format_percent, percent


def read_split(ctx: Ctx, path: str, value: object) -> tuple[Share, ...] | None:
    """Shares in the order written; each provider must exist and the sum must be 100%."""
    entries = ctx.entries(path, value)
    if isinstance(value, dict) and not entries:
        ctx.issue(path, "a split needs at least one provider")
    shares: list[Share] = []
    complete = bool(entries)
    for provider, share_path, written in entries:
        known = ctx.refer(share_path, "provider", provider)
        weight = ctx.convert(share_path, written, percent)
        if weight is None or not known:
            complete = False
            continue
        shares.append(Share(provider, weight))
    total = sum(share.weight for share in shares)
    # Only a split whose every share parsed has a meaningful sum to complain about.
    if complete and total != WHOLE:
        ctx.issue(path, f"shares sum to {format_percent(total)}, not 100%")
        complete = False
    return tuple(shares) if complete else None


def split_field(
    fields: Fields, key: str, required: bool, why: str = ""
) -> tuple[Share, ...] | None:
    """The split under ``key`` of ``fields``, reporting it missing when ``required``."""
    if not fields.has(key):
        if required:
            fields.ctx.issue(fields.at(key), f"missing required key '{key}'{why}")
        return None
    return read_split(fields.ctx, fields.at(key), fields.raw(key))
