"""Pricing one record: volume rounding, rating filters, and graduated tiers."""

from __future__ import annotations

from datetime import datetime

from .catalog import Filter, PlanVersion, Rate, Rounding
from .money import PRICE_PER_MICRO, div_round_half_up


def rounded(volume: int, rounding: Rounding) -> int:
    """Round a record's volume up to the plan's increments (first, then next), with a minimum.

    A zero-volume record stays zero: nothing was carried.
    """
    if volume <= 0:
        return 0
    first = rounding.first
    if volume <= first:
        billed = first
    else:
        step = rounding.next
        billed = first + -(-(volume - first) // step) * step
    return billed if billed >= rounding.minimum else rounding.minimum


def _matches(
    f: Filter, service: str, zone: str, apn: str | None, rat: str | None, local: datetime
) -> bool:
    if f.services and service not in f.services:
        return False
    if f.zones and zone not in f.zones:
        return False
    if f.apns and apn not in f.apns:
        return False
    if f.rats and rat not in f.rats:
        return False
    if f.window is not None:
        minute = local.hour * 60 + local.minute
        start, end = f.window.start, f.window.end
        inside = start <= minute < end if start < end else (minute >= start or minute < end)
        if not inside:
            return False
    return True


def select_rate(
    version: PlanVersion,
    service: str,
    zone: str,
    apn: str | None,
    rat: str | None,
    local: datetime,
) -> tuple[Rate | None, Filter | None]:
    """The rate for a record, and the filter that chose it (the first match wins).

    ``local`` is the record's own start time in its own offset: time windows are the visited
    network's local time.
    """
    for f in version.filters:
        if _matches(f, service, zone, apn, rat, local):
            rate = f.rate or version.rates.get(service, {}).get(zone)
            return rate, f
    return version.rates.get(service, {}).get(zone), None


def price(rate: Rate, used_before: int, quantity: int) -> int:
    """Micro-units for ``quantity`` base units when the cycle already used ``used_before``.

    Tiers are graduated: each part of the quantity is priced by the tier it falls in; the
    parts are summed exactly and the charge is rounded once, half-up.
    """
    if quantity <= 0:
        return 0
    tiers = rate.tiers
    denominator = rate.per * PRICE_PER_MICRO
    if len(tiers) == 1:
        return div_round_half_up(quantity * tiers[0].price, denominator)
    numerator = 0
    position = used_before
    left = quantity
    for tier in tiers:
        if left == 0:
            break
        if tier.up_to is not None and position >= tier.up_to:
            continue
        part = left if tier.up_to is None else min(left, tier.up_to - position)
        numerator += part * tier.price
        position += part
        left -= part
    return div_round_half_up(numerator, denominator)
