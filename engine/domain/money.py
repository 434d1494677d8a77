"""Money as integer micro-units, and prices exact to 10^-12 of a currency unit.

A balance or a charge is an ``int`` count of micro-units (1 EUR = 1_000_000). A catalog price
can be finer than a micro-unit (0.0000195 EUR per KB), so prices are kept as integer
"price units" of 10^-12 currency units; multiplying a volume by a price stays exact, and the
one rounding to micro-units happens at the end of each charge, half-up.
"""

from __future__ import annotations

MICRO = 1_000_000
"""Micro-units per currency unit."""

PRICE_SCALE = 1_000_000_000_000
"""Price units per currency unit (10^-12): the finest price a catalog may state."""

PRICE_PER_MICRO = PRICE_SCALE // MICRO


class MoneyError(ValueError):
    """A decimal string that is not an exact amount of money or a price."""


def _parse_decimal(text: str, places: int) -> int:
    """Parse ``text`` exactly into an integer count of 10^-places units."""
    if not isinstance(text, str):
        raise MoneyError(f"expected a decimal string such as '12.50', got {text!r}")
    s = text.strip()
    sign = 1
    if s[:1] in "+-" and s:
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    whole, dot, frac = s.partition(".")
    if not whole and not frac:
        raise MoneyError(f"not a decimal number: {text!r}")
    if not (whole or "0").isdigit() or (dot and not (frac or "0").isdigit()):
        raise MoneyError(f"not a decimal number: {text!r}")
    if not whole.isascii() or not frac.isascii():
        raise MoneyError(f"not a decimal number: {text!r}")
    if len(frac) > places:
        extra = frac[places:]
        if extra.strip("0"):
            raise MoneyError(f"{text!r} has more than {places} decimal places")
        frac = frac[:places]
    return sign * (int(whole or "0") * 10**places + int((frac or "0").ljust(places, "0")))


def parse_money(text: str) -> int:
    """``"12.5"`` → ``12_500_000`` micro-units; more than 6 decimals is an error, never rounded."""
    return _parse_decimal(text, 6)


def parse_price(text: str) -> int:
    """``"0.0195"`` → price units (10^-12); more than 12 decimals is an error."""
    return _parse_decimal(text, 12)


def div_round_half_up(numerator: int, denominator: int) -> int:
    """Integer division rounding halves away from zero (the one rounding rule for charges)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    if numerator >= 0:
        return (2 * numerator + denominator) // (2 * denominator)
    return -((2 * -numerator + denominator) // (2 * denominator))


def charge_for(quantity: int, price: int, per: int) -> int:
    """Micro-units for ``quantity`` base units at ``price`` price-units per ``per`` base units."""
    return div_round_half_up(quantity * price, per * PRICE_PER_MICRO)


def format_money(micros: int) -> str:
    """``12_500_000`` → ``"12.50"``: at least two decimals, never a digit lost."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICRO)
    digits = f"{frac:06d}".rstrip("0").ljust(2, "0")
    return f"{sign}{whole}.{digits}"


def format_price(price: int) -> str:
    """Price units back to the shortest exact decimal string."""
    sign = "-" if price < 0 else ""
    whole, frac = divmod(abs(price), PRICE_SCALE)
    digits = f"{frac:012d}".rstrip("0")
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def allocate(amount: int, weights: tuple[int, ...]) -> tuple[int, ...]:
    """Split ``amount`` by ``weights`` with the largest-remainder method.

    The parts always sum exactly to ``amount``. Leftover micro-units go to the largest
    fractional remainders; ties go to the earlier weight, so the result is deterministic.
    A negative amount (a refund or adjustment) is split as its mirror image.
    """
    total = sum(weights)
    if total <= 0 or min(weights) < 0:
        raise ValueError("weights must be non-negative and not all zero")
    if amount < 0:
        return tuple(-part for part in allocate(-amount, weights))
    floors = []
    remainders = []
    for w in weights:
        q, r = divmod(amount * w, total)
        floors.append(q)
        remainders.append(r)
    left = amount - sum(floors)
    if left:
        # A reverse sort is stable: equal remainders keep their order, earlier weight first.
        order = sorted(range(len(weights)), key=remainders.__getitem__, reverse=True)
        for i in order[:left]:
            floors[i] += 1
    return tuple(floors)
