"""``prorate``: how a plan version's or a pool's recurring amounts count part of a cycle.

A mapping from a charge kind to ``none`` (the whole cycle, the default) or ``daily`` (the
days of it): a plan version's ``mrc`` and ``addons``, a pool's ``fee`` and ``allowance``.
"""

from __future__ import annotations

from typing import Literal

from engine.domain.catalog import Prorate

from .reader import Fields
from .values import choice

MODES: tuple[Literal["none", "daily"], ...] = ("none", "daily")
mode = choice(MODES, "pro-rating")
PLAN_KINDS = ("mrc", "addons")
POOL_KINDS = ("fee", "allowance")


def prorate(
    f: Fields, kinds: tuple[str, ...], takes: tuple[str, ...] | None = None
) -> dict[str, Prorate]:
    """Each kind's mode (``none`` when not given); ``takes`` narrows the kinds that apply,
    naming the others as problems at their path."""
    out: dict[str, Prorate] = dict.fromkeys(kinds, "none")
    if not f.has("prorate"):
        return out
    m = f.ctx.mapping(f.at("prorate"), f.raw("prorate"), kinds)
    if m is None:
        return out
    for kind in kinds:
        if not m.has(kind):
            continue
        if takes is not None and kind not in takes:
            m.ctx.issue(
                m.at(kind),
                f"'{kind}' pro-rating does not apply here (it takes: {', '.join(takes) or 'none'})",
            )
            continue
        out[kind] = m.opt(kind, mode, "none")
    return out
