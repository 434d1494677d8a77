"""Catalog input is bounded: hostile YAML gets a located error, and settings carry limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.catalog import yaml_source
from engine.catalog.limits import MAX_PRIORITY, MAX_VOLUME_CEILING
from engine.domain.limits import DEFAULT_MAX_VOLUME, Limits

from .conftest import Data, Write, assert_issues, change, issues_of, load


def _alias_bomb() -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = "a"
    for name in "bcdefghi":  # 9^9 = 387 million strings once expanded
        text += f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]\n"
        previous = name
    return text


@pytest.mark.chaos
def test_an_alias_bomb_is_refused_before_it_expands(write: Write) -> None:
    issues = issues_of(write(_alias_bomb()))
    assert len(issues) == 1
    assert "aliases expand to more than" in issues[0].message
    assert issues[0].file.endswith("catalog.yaml") and issues[0].line is not None


@pytest.mark.chaos
def test_an_alias_that_refers_to_itself_is_refused(write: Write) -> None:
    (issue,) = issues_of(write("zones: &z\n  - *z\n"))
    assert (issue.line, issue.message) == (1, "an alias refers to itself")


@pytest.mark.chaos
@pytest.mark.parametrize(
    "text",
    [
        "zones: " + "[" * 10_000 + "]" * 10_000 + "\n",
        "zones: " + "{a: " * 10_000 + "1" + "}" * 10_000 + "\n",
        "".join("  " * i + "a:\n" for i in range(200)),
    ],
)
def test_deep_nesting_is_a_located_error_not_a_recursion_error(write: Write, text: str) -> None:
    (issue,) = issues_of(write(text))
    assert "nest deeper than 64 levels" in issue.message
    assert issue.line is not None


@pytest.mark.chaos
def test_an_oversized_file_is_refused_unread(
    write: Write, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(yaml_source.MAX_BYTES + 1)  # sparse: nothing is written, nothing read
    (issue,) = issues_of(big)
    assert "over the limit" in issue.message and issue.file == str(big)


def test_a_few_aliases_are_still_fine(write: Write, base: Data) -> None:
    text = write(base).read_text()
    assert text.count("currency: EUR") >= 3
    text = text.replace("currency: EUR", "currency: &cur EUR", 1)
    text = text.replace("currency: EUR", "currency: *cur")
    catalog = load(write(text))
    assert {w.currency for w in catalog.wallets.values()} == {"EUR"}


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


def test_an_id_with_a_control_character_is_located(write: Write, base: Data) -> None:
    text = write(base).read_text().replace("id: w2", 'id: "w\\0two"', 1)
    (issue,) = issues_of(write(text))
    assert issue.path == "wallets[1].id" and "control characters" in issue.message


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ([("plans[0].versions[0].version", 2**40)], "plans[0].versions[0].version"),
        ([("vouchers[0].amount", "1" + "0" * 30)], "vouchers[0].amount"),
        ([("vouchers[0].priority", 2**70)], "vouchers[0].priority"),
        ([("vouchers[0].grant_days", 10**20)], "vouchers[0].grant_days"),
        ([("pools[0].allowance", 2**70)], "pools[0].allowance"),
        ([("settings", {"dedup_window_days": 10**9})], "settings.dedup_window_days"),
    ],
)
def test_absurd_catalog_values_are_located(
    write: Write, base: Data, changes: list[tuple[str, object]], expected: str
) -> None:
    """Values no ClickHouse column (UInt32 versions, Int64 amounts and sizes) or date could
    hold are refused where they are written."""
    for path, value in changes:
        change(base, path, value)
    assert [issue.path for issue in issues_of(write(base))] == [expected]
