"""Single-value converters, over many inputs: exact, and strict about what they refuse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.catalog.values import instant, network, percent, window
from engine.domain.catalog import TimeWindow

weights = st.integers(min_value=1, max_value=1_000_000)


@given(weights)
def test_a_percent_reads_back_as_its_weight(weight: int) -> None:
    whole, frac = divmod(weight, 10_000)
    written = f"{whole}.{frac:04d}"
    assert percent(written) == weight
    # A YAML number arrives as a float; its repr gives back the digits as written.
    assert percent(float(written)) == weight


@pytest.mark.parametrize("bad", ["100.0001", "0", "-5", "1e2", "33.33333", "", True, None])
def test_a_percent_outside_0_to_100_or_too_fine_is_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        percent(bad)


@given(st.from_regex(r"\d{3}", fullmatch=True), st.from_regex(r"\d{2,3}", fullmatch=True))
def test_networks_are_kept_and_wildcards_become_the_mcc(mcc: str, mnc: str) -> None:
    assert network(f"{mcc}-{mnc}") == f"{mcc}-{mnc}"
    assert network(f"{mcc}-*") == mcc


@pytest.mark.parametrize("bad", ["26-01", "262-1", "262-0001", "262", "262-**", "262_01", 26201])
def test_malformed_networks_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="not a network"):
        network(bad)


minutes = st.integers(min_value=0, max_value=24 * 60 - 1)


@given(minutes, minutes)
def test_a_time_window_is_minutes_since_midnight(start: int, end: int) -> None:
    written = f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
    if start == end:
        with pytest.raises(ValueError, match="cannot start where it ends"):
            window(written)
    else:
        assert window(written) == TimeWindow(start, end)


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5))]
        ),
    ).map(lambda moment: moment.replace(microsecond=0))
)
def test_an_instant_is_exact_epoch_seconds(moment: datetime) -> None:
    expected = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(seconds=1)
    assert instant(moment.isoformat()) == expected
    if moment.utcoffset() == timedelta(0):
        assert instant(moment.isoformat().replace("+00:00", "Z")) == expected
