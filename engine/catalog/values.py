"""Converters for single catalog values: each returns the parsed value or raises ValueError.

The message of the ValueError is what the user reads, next to the path and the line; the
domain parsers' own messages (``MoneyError``, ``UnitError``) are passed through unchanged.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from engine.domain.catalog import TimeWindow
from engine.domain.money import parse_money, parse_price
from engine.domain.units import UnitError, parse_size, unit_size

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NETWORK = re.compile(r"(\d{3})-(\d{2,3}|\*)")
_CURRENCY = re.compile(r"[A-Z]{3}")
_ICCID = re.compile(r"\d{18,22}")
_WINDOW = re.compile(r"(\d\d):(\d\d)-(\d\d):(\d\d)")
_PERCENT = re.compile(r"(\d{1,3})(?:\.(\d{1,4}))?")
_MAX_LISTED = 12

T = TypeVar("T")

WEIGHT_SCALE = 10_000
"""``Share.weight`` units per percent: four decimals of a percent, exactly."""
WHOLE = 100 * WEIGHT_SCALE
"""The weight of 100%: every split sums to exactly this."""


def hint(word: str, known: Iterable[str]) -> str:
    """`` (did you mean 'price'?)`` for a near miss, else the known names (a few of them)."""
    names = list(known)
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    if close and len(names) > _MAX_LISTED:
        return f" (did you mean '{close[0]}'?)"
    if close:
        return f" (did you mean '{close[0]}'? known: {', '.join(names)})"
    if not names:
        return " (none are defined)"
    listed = ", ".join(names[:_MAX_LISTED])
    more = f", … {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
    return f" (known: {listed}{more})"


def suggest(word: str, known: Sequence[str]) -> str:
    """`` (did you mean 'price'?)`` for a misspelt key, else the keys that are allowed."""
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (expected one of: {', '.join(known)})"


def describe(value: object) -> str:
    """How a value reads back to the person who wrote it, for 'expected X, got Y'."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        # YAML 1.1 reads yes/no/on/off as booleans: a country code NO becomes false.
        return f"the boolean {str(value).lower()} (quote it if you meant text)"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {describe(value)}")
    return value


def ident(value: object) -> str:
    """An id: a non-empty string without spaces (ids appear in paths, events and queries)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected an id (a non-empty string), got {describe(value)}")
    if any(ch.isspace() for ch in value):
        raise ValueError(f"an id cannot contain spaces: {value!r}")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        # the inputs' ids refuse them too (engine/domain/commands.py PRINTABLE)
        raise ValueError(f"an id cannot contain control characters: {value!r}")
    return value


def integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number, got {describe(value)}")
    return value


def int_between(low: int, high: int | None = None) -> Callable[[object], int]:
    def convert(value: object) -> int:
        number = integer(value)
        if number < low or (high is not None and number > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise ValueError(f"must be {bounds}, got {number}")
        return number

    return convert


def int_capped(low: int, cap: int) -> Callable[[object], int]:
    """A whole number of at least ``low``, and at most ``cap``: a bound against absurd
    values (a column or a date that could not hold them) rather than a rule of the domain."""

    def convert(value: object) -> int:
        number = int_between(low)(value)
        if number > cap:
            raise ValueError(f"is too large: at most {cap}, got {number}")
        return number

    return convert


def _decimal_text(value: object) -> str:
    # A YAML number such as 0.05 is a binary float before we see it: ask for quotes instead
    # of guessing its digits. Whole numbers are exact, so they may stay unquoted.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value
    raise ValueError(f"expected a decimal string such as '12.50' (quoted), got {describe(value)}")


MAX_MICROS = ((1 << 63) - 1) // 1024
"""Largest amount a catalog may state, in micro-units: sums of many still fit ``Int64``."""
MAX_BASE_UNITS = 1 << 62
"""Largest size a catalog may state, in base units (bytes, seconds...): fits ``Int64``."""


def money(value: object) -> int:
    """Micro-units, any sign."""
    micros = parse_money(_decimal_text(value))
    if abs(micros) > MAX_MICROS:
        raise ValueError(f"is too large: at most {MAX_MICROS} micro-units, got {value!r}")
    return micros


def amount(value: object) -> int:
    """Micro-units, zero or more."""
    micros = money(value)
    if micros < 0:
        raise ValueError(f"cannot be negative: {value!r}")
    return micros


def positive_amount(value: object) -> int:
    micros = money(value)
    if micros <= 0:
        raise ValueError(f"must be more than zero, got {value!r}")
    return micros


def price(value: object) -> int:
    """Price units (10^-12), zero or more."""
    units = parse_price(_decimal_text(value))
    if units < 0:
        raise ValueError(f"a price cannot be negative: {value!r}")
    return units


def size(service: str, positive: bool = False) -> Callable[[object], int]:
    """A volume in ``service``'s base units (``"100MB"``, ``"1min"``, or a whole number)."""

    def convert(value: object) -> int:
        base = parse_size(service, value)
        if base > MAX_BASE_UNITS:
            raise ValueError(f"is too large: at most {MAX_BASE_UNITS} base units, got {value!r}")
        if positive and base <= 0:
            raise ValueError(f"must be more than zero, got {value!r}")
        return base

    return convert


def per_unit(service: str) -> Callable[[object], int]:
    """What a price is per: a unit name (``MB``, ``minute``) or a size (``100KB``)."""

    def convert(value: object) -> int:
        if isinstance(value, str):
            try:
                return unit_size(service, value.strip())
            except UnitError as unknown:
                try:
                    return size(service, positive=True)(value)
                except UnitError:
                    raise unknown from None
        return size(service, positive=True)(value)

    return convert


def instant(value: object) -> int:
    """An RFC 3339 time with an offset -> epoch seconds."""
    example = "'2026-01-01T00:00:00Z'"
    if not isinstance(value, str):
        raise ValueError(f"expected an RFC 3339 time such as {example}, got {describe(value)}")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"not an RFC 3339 time: {value!r} (write e.g. {example})") from None
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset (add 'Z' or e.g. '+02:00')")
    if moment.microsecond:
        raise ValueError(f"{value!r} is not a whole second")
    return (moment - _EPOCH) // timedelta(seconds=1)


def currency(value: object) -> str:
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise ValueError(f"expected a currency code of 3 capital letters, got {describe(value)}")
    return value


def network(value: object) -> str:
    """``"262-01"`` stays as written; ``"262-*"`` (a whole country) is stored as ``"262"``."""
    match = _NETWORK.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f"not a network: {describe(value)} (write MCC-MNC such as '262-01', "
            "or '262-*' for every network of a country)"
        )
    mcc, mnc = match.groups()
    return mcc if mnc == "*" else f"{mcc}-{mnc}"


def window(value: object) -> TimeWindow:
    """``"22:00-06:00"`` -> minutes since midnight; it may wrap midnight, but not be empty."""
    match = _WINDOW.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected a time window 'HH:MM-HH:MM', got {describe(value)}")
    h1, m1, h2, m2 = (int(part) for part in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError(f"times must be from 00:00 to 23:59, got {value!r}")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise ValueError(f"a time window cannot start where it ends: {value!r}")
    return TimeWindow(start, end)


def iccid(value: object) -> str:
    if not isinstance(value, str) or not _ICCID.fullmatch(value):
        raise ValueError(
            f"expected an ICCID: a quoted string of 18 to 22 digits, got {describe(value)}"
        )
    return value


def percent(value: object) -> int:
    """A share in percent with up to 4 decimals -> weight in 1/10_000 of a percent."""
    # A YAML float's repr is the shortest text that reads back as the same number, so it
    # gives back the digits as written (33.3333 -> '33.3333'): exact for 4 decimals.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a percentage such as 60 or '33.3333', got {describe(value)}")
    written = repr(value) if isinstance(value, float) else str(value).strip()
    match = _PERCENT.fullmatch(written)
    if match is None:
        raise ValueError(f"expected a percentage with at most 4 decimals, got {value!r}")
    whole, frac = match.groups()
    weight = int(whole) * WEIGHT_SCALE + int((frac or "0").ljust(4, "0"))
    if not 0 < weight <= WHOLE:
        raise ValueError(f"a share must be more than 0 and at most 100, got {value!r}")
    return weight


def format_percent(weight: int) -> str:
    whole, frac = divmod(weight, WEIGHT_SCALE)
    digits = f"{frac:04d}".rstrip("0")
    return f"{whole}.{digits}%" if digits else f"{whole}%"


def choice(options: Sequence[T], what: str) -> Callable[[object], T]:
    """One of a fixed set of names (services, pool kinds, grant kinds, radio technologies)."""

    def convert(value: object) -> T:
        for option in options:
            if option == value:
                return option
        if isinstance(value, str):
            raise ValueError(f"unknown {what} '{value}'{hint(value, map(str, options))}")
        raise ValueError(f"expected a {what}, got {describe(value)}")

    return convert
