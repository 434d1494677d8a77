"""``settings``: the limits of the contract (see engine/domain/limits.py), each defaulted."""

from __future__ import annotations

from collections.abc import Callable

from engine.domain.limits import CEILING, DEFAULT_MAX_VOLUME, Limits
from engine.domain.units import SERVICES

from .reader import Ctx
from .values import MAX_BASE_UNITS, instant, int_between, positive_amount, size

LIMIT_KEYS = (
    "earliest",
    "latest",
    "max_volume",
    "max_top_up",
    "max_charge",
    "grant_priority",
)
"""The keys of ``settings`` read here (``dedup_window_days`` is read by sections.py)."""

MAX_PRIORITY = 1_000_000
"""Largest grant priority a catalog may state (opening grants, vouchers, the range)."""
MAX_VOLUME_CEILING = MAX_BASE_UNITS
"""No per-record volume limit may exceed this (as no size of a catalog may): rounded up to
the plan's increment, the largest accepted volume still fits the projections' ``Int64``
columns. Amounts are capped likewise (``MAX_MICROS``)."""


def read_limits(ctx: Ctx, value: object) -> Limits:
    """The limits of ``settings`` (defaults for what it leaves out); the problems found are
    issues of ``ctx`` (unknown keys are reported by ``read_settings``)."""
    defaults = Limits()
    if not isinstance(value, dict):
        return defaults
    data = {str(k): v for k, v in value.items()}

    def at(key: str) -> str:
        return f"settings.{key}"

    def get(key: str, convert: Callable[[object], int], default: int) -> int:
        raw = data.get(key)
        if raw is None:
            return default
        got = ctx.convert(at(key), raw, convert)
        return default if got is None else got

    earliest = get("earliest", instant, defaults.earliest)
    latest = get("latest", instant, defaults.latest)
    if earliest >= latest:
        ctx.issue(at("latest"), "must come after settings.earliest")
        earliest, latest = defaults.earliest, defaults.latest
    if earliest < 0:
        ctx.issue(at("earliest"), "must not come before 1970-01-01T00:00:00Z")
        earliest = defaults.earliest
    if latest > CEILING:
        ctx.issue(at("latest"), "must not come after 2300-01-01T00:00:00Z")
        latest = defaults.latest
    max_volume = dict(DEFAULT_MAX_VOLUME)
    volumes = data.get("max_volume")
    if volumes is not None:
        for service, path, raw in ctx.entries(at("max_volume"), volumes):
            if service not in SERVICES:
                ctx.issue(path, f"unknown service '{service}' (known: {', '.join(SERVICES)})")
                continue
            got = ctx.convert(path, raw, size(service, positive=True))  # at most 2^62
            if got is not None:
                max_volume[service] = got
    max_amount = get("max_top_up", positive_amount, defaults.max_amount)
    max_charge = get("max_charge", positive_amount, defaults.max_charge)
    low, high = defaults.min_priority, defaults.max_priority
    priorities = data.get("grant_priority")
    if priorities is not None:
        f = ctx.mapping(at("grant_priority"), priorities, ("min", "max"))
        if f is not None:
            low = f.opt("min", int_between(0, MAX_PRIORITY), low)
            high = f.opt("max", int_between(0, MAX_PRIORITY), high)
            if low > high:
                ctx.issue(f.at("max"), f"must be at least min ({low})")
                low, high = defaults.min_priority, defaults.max_priority
    return Limits(earliest, latest, max_volume, max_amount, max_charge, low, high)
