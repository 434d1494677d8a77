"""Catalog input is bounded: hostile YAML gets a located error, and so does a value no
column or date could hold. (The contract's limits that ``settings`` set: test_limits.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.catalog import yaml_source

from .conftest import Data, Write, change, issues_of, load


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
