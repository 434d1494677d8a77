"""``settings``: the limits of the contract, each defaulted, each bounded where written."""

from __future__ import annotations

import pytest

from engine.catalog.limits import MAX_PRIORITY, MAX_VOLUME_CEILING
from engine.domain.limits import DEFAULT_MAX_VOLUME, Limits

from .conftest import Data, Write, assert_issues, load


def test_settings_limits_default_and_are_read(write: Write, base: Data) -> None:
    assert load(write(base)).limits == Limits()
    base["settings"] = {
        "earliest": "2020-01-01T00:00:00Z",
        "latest": "2040-01-01T00:00:00Z",
        "max_volume": {"data": "10GB", "sms": 50},
        "max_top_up": "5000.00",
        "max_charge": "100.00",
        "grant_priority": {"min": 1, "max": 99},
    }
    limits = load(write(base)).limits
    assert (limits.earliest, limits.latest) == (1_577_836_800, 2_208_988_800)
    assert limits.max_volume == {**DEFAULT_MAX_VOLUME, "data": 10 * 1024**3, "sms": 50}
    assert (limits.max_amount, limits.max_charge) == (5_000_000_000, 100_000_000)
    assert (limits.min_priority, limits.max_priority) == (1, 99)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"latest": "2000-01-01T00:00:00Z"}, [("settings.latest", "must come after")]),
        ({"latest": "9999-12-31T00:00:00Z"}, [("settings.latest", "must not come after")]),
        ({"max_volume": {"fax": 1}}, [("settings.max_volume.fax", "unknown service 'fax'")]),
        ({"max_volume": {"data": 0}}, [("settings.max_volume.data", "more than zero")]),
        ({"max_top_up": "1" + "0" * 30}, [("settings.max_top_up", "too large")]),
        ({"max_charge": "-1"}, [("settings.max_charge", "more than zero")]),
        ({"grant_priority": {"min": 5, "max": 1}}, [("settings.grant_priority.max", "at least")]),
        ({"max_topup": 1}, [("settings.max_topup", "unknown key 'max_topup'")]),
    ],
)
def test_bad_limits_are_located(
    write: Write, base: Data, settings: dict[str, object], expected: list[tuple[str, str]]
) -> None:
    assert_issues(write, base, [("settings", settings)], expected)


def test_the_ceilings_themselves_may_be_set_and_no_more(write: Write, base: Data) -> None:
    """Up to the ceilings a catalog may go (the projections' columns still hold every value
    accepted); one past them is located."""
    top = {"max_volume": {"data": MAX_VOLUME_CEILING}, "grant_priority": {"max": MAX_PRIORITY}}
    base["settings"] = top
    limits = load(write(base)).limits
    assert (limits.max_volume["data"], limits.max_priority) == (MAX_VOLUME_CEILING, MAX_PRIORITY)
    over = {
        "max_volume": {"data": MAX_VOLUME_CEILING + 1},
        "grant_priority": {"max": MAX_PRIORITY + 1},
    }
    assert_issues(
        write,
        base,
        [("settings", over)],
        [
            ("settings.max_volume.data", "at most"),
            ("settings.grant_priority.max", f"to {MAX_PRIORITY}, got"),
        ],
    )
