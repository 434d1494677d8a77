"""Pricing one record: volume rounding, rating filters, and graduated tiers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from .catalog import Filter, PlanVersion, Rate, Rounding, TimeWindow
from .money import PRICE_PER_MICRO, div_round_half_up
from .units import SERVICES

if TYPE_CHECKING:
    from .index import Splitter


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


def _matches(f: Filter, service: str, zone: str, apn: str | None, rat: str | None) -> bool:
    """Whether every criterion of ``f`` but its time window holds."""
    if f.services and service not in f.services:
        return False
    if f.zones and zone not in f.zones:
        return False
    if f.apns and apn not in f.apns:
        return False
    return not (f.rats and rat not in f.rats)


def _in_window(window: TimeWindow, local: datetime) -> bool:
    minute = local.hour * 60 + local.minute
    start, end = window.start, window.end
    return start <= minute < end if start < end else (minute >= start or minute < end)


RateChoice = tuple[Rate | None, tuple[Filter, ...]]
"""A record's rate before time windows: the plan's own rate for its service and zone, and
the filters that match it apart from their windows, in order (up to the first that has no
window: it always applies, so later ones never do)."""


def rate_choice(
    version: PlanVersion, service: str, zone: str, apn: str | None, rat: str | None
) -> RateChoice:
    candidates = []
    for f in version.filters:
        if _matches(f, service, zone, apn, rat):
            candidates.append(f)
            if f.window is None:
                break
    return version.rates.get(service, {}).get(zone), tuple(candidates)


def choose(choice: RateChoice, local: datetime) -> tuple[Rate | None, Filter | None]:
    """The rate for a record of ``local`` time, and the filter that chose it."""
    base, candidates = choice
    for f in candidates:
        if f.window is None or _in_window(f.window, local):
            return f.rate or base, f
    return base, None


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
    return choose(rate_choice(version, service, zone, apn, rat), local)


class RateTable:
    """One plan version's ``rate_choice`` per (service, zone, APN, RAT), worked out up front.

    The keys stay few whatever the input holds: services and RATs are closed sets, zones
    come from the catalog, and an APN or RAT that no filter names matches exactly as none
    does, so it is looked up as ``None``. Built whole and never written after, so a table
    can be shared by every wallet and worker that holds its catalog.
    """

    __slots__ = ("apns", "choices", "rats", "usage", "version")

    def __init__(
        self, version: PlanVersion, zones: Iterable[str], usage: Splitter | None = None
    ) -> None:
        self.version = version
        self.usage = usage  # the index's splitter of the usage split: rated records are split by it
        self.apns = frozenset(apn for f in version.filters for apn in f.apns)
        self.rats = frozenset(rat for f in version.filters for rat in f.rats)
        apns: tuple[str | None, ...] = (None, *sorted(self.apns))
        rats: tuple[str | None, ...] = (None, *sorted(self.rats))
        self.choices: Mapping[tuple[str, str, str | None, str | None], RateChoice] = {
            (service, zone, apn, rat): rate_choice(version, service, zone, apn, rat)
            for service in SERVICES
            for zone in zones
            for apn in apns
            for rat in rats
        }

    def select(
        self, service: str, zone: str, apn: str | None, rat: str | None, local: datetime
    ) -> tuple[Rate | None, Filter | None]:
        """Exactly ``select_rate(self.version, ...)``."""
        if apn not in self.apns:
            apn = None
        if rat not in self.rats:
            rat = None
        choice = self.choices.get((service, zone, apn, rat))
        if choice is None:  # a zone the table was not built for: worked out, not kept
            choice = rate_choice(self.version, service, zone, apn, rat)
        return choose(choice, local)


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


def tier_counter(iccid: str, service: str, cycle: str, zone: str | None) -> tuple[str, str, str]:
    """The counter a CDR's volume adds to for graduated tiers: its SIM's, per service and
    cycle, and per zone too when ``zone`` is given (a plan with ``tier_scope: zone``)."""
    return (iccid, service if zone is None else f"{service}@{zone}", cycle)
