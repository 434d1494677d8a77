"""Sizes and units: every volume in a service's base unit, binary multiples for data."""

from __future__ import annotations

import pytest

from engine.domain.units import UnitError, parse_size, unit_size


@pytest.mark.parametrize(
    ("service", "value", "base"),
    [
        ("data", "500MB", 500 * 1024**2),
        ("data", "1.5GB", 3 * 1024**3 // 2),
        ("data", "1 KB", 1024),
        ("data", 42, 42),
        ("data", "42", 42),
        ("voice", "5min", 300),
        ("voice", "1h", 3600),
        ("sms", "10msg", 10),
        ("event", "3", 3),
    ],
)
def test_parse_size(service: str, value: object, base: int) -> None:
    assert parse_size(service, value) == base


@pytest.mark.parametrize(
    ("service", "value"),
    [
        ("data", -1),
        ("data", True),
        ("data", 1.5),
        ("data", "0.5B"),  # not a whole number of bytes
        ("data", "5mb"),
        ("data", "MB"),
        ("data", "-5MB"),
        ("voice", "5GB"),
        ("data", "1e3"),
    ],
)
def test_parse_size_rejects(service: str, value: object) -> None:
    with pytest.raises(UnitError):
        parse_size(service, value)


def test_unit_size_names_the_known_units() -> None:
    assert unit_size("data", "MB") == 1024**2
    with pytest.raises(UnitError, match="known: s, second"):
        unit_size("voice", "fortnight")
