"""Services and the units their volumes are counted and priced in.

Every volume inside the engine is in a service's base unit: bytes for data, seconds for
voice, messages for SMS, units for business events. Catalogs may write sizes with a unit
("10GB", "5min"); binary multiples are used for data (1 KB = 1024 bytes), as most IoT
connectivity contracts do.
"""

from __future__ import annotations

from typing import Literal

Service = Literal["data", "sms", "voice", "event"]
SERVICES: tuple[Service, ...] = ("data", "sms", "voice", "event")

RAT = Literal["2G", "3G", "4G", "5G", "NB-IoT", "LTE-M"]
RATS: tuple[str, ...] = ("2G", "3G", "4G", "5G", "NB-IoT", "LTE-M")

# Units a size or a price may be stated in, per service: name -> base units.
UNITS: dict[str, dict[str, int]] = {
    "data": {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4},
    "voice": {"s": 1, "second": 1, "min": 60, "minute": 60, "h": 3600},
    "sms": {"msg": 1, "message": 1},
    "event": {"unit": 1, "event": 1},
}

# The unit a price is per when the catalog does not say.
DEFAULT_PRICE_UNIT: dict[str, str] = {
    "data": "MB",
    "voice": "minute",
    "sms": "message",
    "event": "unit",
}


class UnitError(ValueError):
    """A size or unit the service does not know."""


def unit_size(service: str, unit: str) -> int:
    """Base units in one ``unit`` of ``service`` (``unit_size("data", "MB") == 1048576``)."""
    try:
        return UNITS[service][unit]
    except KeyError:
        known = ", ".join(UNITS.get(service, {}))
        raise UnitError(f"unknown unit {unit!r} for {service} (known: {known})") from None


def parse_size(service: str, value: object) -> int:
    """A whole number of base units, or ``"<number><unit>"`` such as ``"500MB"``, ``"1.5GB"``."""
    if isinstance(value, bool):
        raise UnitError(f"expected a size, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise UnitError(f"a size cannot be negative: {value}")
        return value
    if not isinstance(value, str):
        raise UnitError(f"expected a size such as 500MB, got {value!r}")
    text = value.strip()
    number = text.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-").strip()
    unit = text[len(number) :].strip() or next(iter(UNITS[service]))
    size = unit_size(service, unit)
    whole, _, frac = number.partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        raise UnitError(f"expected a size such as 500MB, got {value!r}")
    scaled = int(whole) * size + (int(frac) * size // 10 ** len(frac) if frac else 0)
    if frac and int(frac) * size % 10 ** len(frac):
        raise UnitError(f"{value!r} is not a whole number of base units")
    return scaled
