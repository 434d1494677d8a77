"""Loading catalog files: the example, a broken copy of it, and what YAML can throw at us."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

from engine.catalog import CatalogError, CatalogIssue, load_catalog, load_catalog_text, summarize
from engine.domain.catalog import Share, Tier
from engine.domain.units import unit_size

from .conftest import EXAMPLE, REPO, Data, Write, issues_of


def test_example_loads_with_the_expected_shape() -> None:
    catalog = load_catalog(EXAMPLE)

    assert list(catalog.providers) == ["telco-a", "platform", "reseller"]
    assert list(catalog.zones) == ["EU", "NA", "APAC", "ROW"]
    assert [len(plan.versions) for plan in catalog.plans.values()] == [2, 1]
    assert sorted(pool.kind for pool in catalog.pools.values()) == [
        "adaptive",
        "flexible",
        "stacked",
        "static",
    ]
    assert len(catalog.subscriptions) == 10_003
    assert {w: len(s) for w, s in catalog.sims_by_wallet.items()} == {
        "acme": 5002,
        "globex": 3000,
        "initech": 500,
        "umbrella": 1501,
    }
    assert catalog.networks["262-01"] == "EU"
    assert catalog.networks["234"] == "EU"  # "234-*" is stored as the bare MCC
    assert catalog.networks["334-020"] == "ROW"
    eu = catalog.plans["iot-eu"]
    assert eu.version_at(1_790_000_000) is eu.versions[0]  # 2026-09-21
    assert eu.versions[1].effective_from == 1_790_812_800  # 2026-10-01T00:00:00Z
    assert eu.versions[0].restart_fee == 200_000


def test_example_summary_has_the_right_counts() -> None:
    summary = summarize(load_catalog(EXAMPLE))

    assert summary.splitlines() == [
        "providers:     3",
        "zones:         4 (27 networks)",
        "plans:         2 (3 versions)",
        "pools:         4 (1 static, 1 flexible, 1 stacked, 1 adaptive)",
        "wallets:       4",
        "SIMs:          10,003 (acme 5,002, globex 3,000, initech 500, umbrella 1,501)",
        "vouchers:      3",
    ]


# Each mistake: (text in the example, its replacement, expected path, words of the message).
MISTAKES = [
    (
        '            EU: {price: "0.0195", per: MB}',
        '            EUX: {price: "0.0195", per: MB}',
        "plans[0].versions[0].rates.data.EUX",
        "unknown zone 'EUX'",
    ),
    (
        "usage: {telco-a: 60, platform: 30, reseller: 10}",
        "usage: {telco-a: 50, platform: 30, reseller: 10}",
        "plans[0].versions[0].splits.usage",
        "shares sum to 90%, not 100%",
    ),
    (
        'EU: {price: "0.05"}',
        'EU: {price: "0,05"}',
        "plans[0].versions[0].rates.sms.EU.price",
        "not a decimal number: '0,05'",
    ),
    (
        'thresholds: ["10000.00"',
        'treshold: ["10000.00"',
        "wallets[0].treshold",
        "unknown key 'treshold' (did you mean 'thresholds'?)",
    ),
    (
        'iccid: "89441000000000900001"',
        'iccid: "89441000000000100007"',
        "subscriptions[4].iccid",
        "duplicate ICCID '89441000000000100007' (first at subscriptions[0].iccids)",
    ),
    (
        '"262-01"',
        '"26-01"',
        "zones[0].networks[0]",
        "not a network: the text '26-01'",
    ),
]


def test_a_broken_copy_of_the_example_reports_every_mistake_at_its_line(write: Write) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    expected: dict[str, tuple[int, str]] = {}
    for old, new, path, message in MISTAKES:
        assert old in text, old
        text = text.replace(old, new, 1)
        line = 1 + text[: text.index(new)].count("\n")
        expected[path] = (line, message)
    broken = write(text)

    issues = issues_of(broken)

    assert sorted(issue.path for issue in issues) == sorted(expected)
    for issue in issues:
        line, message = expected[issue.path]
        assert issue.file == str(broken)
        assert issue.line == line, issue
        assert message in issue.message
    assert [issue.line for issue in issues] == sorted(line for line, _ in expected.values())


def test_error_text_lists_every_issue_one_per_line(write: Write) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new, _, _ in MISTAKES:
        text = text.replace(old, new, 1)
    path = write(text)

    with pytest.raises(CatalogError) as caught:
        load_catalog(path)

    lines = str(caught.value).splitlines()
    assert len(lines) == len(MISTAKES)
    line = 1 + text[: text.index("EUX:")].count("\n")
    assert f"{path}:{line}: plans[0].versions[0].rates.data.EUX: unknown zone 'EUX'" in str(
        caught.value
    )
    assert all(re.match(rf"{re.escape(str(path))}:\d+: \S+: ", entry) for entry in lines)


def test_issue_text_names_file_line_path_and_message() -> None:
    issue = CatalogIssue("catalog.yaml", "plans[2].rates.data.EU", 42, "unknown zone 'EUX'")
    assert str(issue) == "catalog.yaml:42: plans[2].rates.data.EU: unknown zone 'EUX'"
    assert str(CatalogIssue("c.yaml", "", None, "cannot read")) == "c.yaml: cannot read"


def test_invalid_yaml_is_a_catalog_error_with_its_line(write: Write) -> None:
    path = write("providers:\n  - id: a\nzones: [EU, NA\nplans: []\n")

    issues = issues_of(path)

    assert len(issues) == 1
    assert issues[0].message.startswith("invalid YAML")
    assert issues[0].line == 4


def test_a_revisions_text_loads_as_its_file_does() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    expected = load_catalog(EXAMPLE)
    for loaded in (load_catalog_text(text, "c.yaml"), load_catalog_text("\ufeff" + text, "c.yaml")):
        assert (loaded.plans, loaded.wallets, loaded.pools) == (
            expected.plans,
            expected.wallets,
            expected.pools,
        )
        assert loaded.subscriptions == expected.subscriptions


def test_a_revisions_text_names_the_revision_in_its_issues() -> None:
    with pytest.raises(CatalogError) as raised:
        load_catalog_text("providers:\n  - id: a\nzones: [EU, NA\n", "revision 3 (prices.yaml)")
    [issue] = raised.value.issues
    assert (issue.file, issue.line) == ("revision 3 (prices.yaml)", 4)
    assert issue.message.startswith("invalid YAML")


def test_a_tab_in_indentation_is_a_catalog_error(write: Write) -> None:
    issues = issues_of(write("providers:\n\t- id: a\n"))
    assert issues[0].message.startswith("invalid YAML")
    assert issues[0].line == 2


def test_a_missing_file_is_a_catalog_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"

    issues = issues_of(missing)

    assert len(issues) == 1
    assert issues[0].file == str(missing)
    assert issues[0].line is None
    assert "cannot read the file" in issues[0].message


def test_a_directory_is_a_catalog_error(tmp_path: Path) -> None:
    assert "cannot read the file" in issues_of(tmp_path)[0].message


def test_an_empty_file_or_a_list_is_a_catalog_error(write: Write) -> None:
    assert "empty" in issues_of(write(""))[0].message
    assert issues_of(write("- 1\n"))[0].message == "expected a mapping, got a list"


def test_a_key_written_twice_is_reported_at_the_second_one(write: Write) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("    name: North America\n", "    name: North America\n    name: NA\n")
    issues = issues_of(write(text))

    assert [(i.path, i.line) for i in issues] == [
        ("zones[1].name", 1 + text[: text.index("    name: NA\n")].count("\n"))
    ]


def test_unquoted_timestamps_are_read_as_text_and_checked(write: Write) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        'effective_from: "2026-10-01T00:00:00Z"', "effective_from: 2026-02-30T00:00:00Z"
    )
    issues = issues_of(write(text))

    assert [i.path for i in issues] == ["plans[0].versions[1].effective_from"]
    assert "not an RFC 3339 time" in issues[0].message


def test_iccid_ranges_expand_to_consecutive_iccids_of_the_same_length(
    write: Write, base: Data
) -> None:
    base["subscriptions"] = [
        {"iccids": {"first": "894410000000000998", "count": 3}, "wallet": "w1", "plan": "p1"},
        {"iccids": {"first": "0894410000000000001", "count": 2}, "wallet": "w2", "plan": "p1"},
        {"iccid": "894410000000002000", "wallet": "w2", "plan": "p1"},
    ]
    catalog = load_catalog(write(base))

    assert catalog.sims_by_wallet == {
        "w1": ("894410000000000998", "894410000000000999", "894410000000001000"),
        "w2": ("0894410000000000001", "0894410000000000002", "894410000000002000"),
    }
    sub = catalog.subscriptions["894410000000000999"]
    assert (sub.wallet, sub.plan, sub.pool) == ("w1", "p1", None)


def test_an_iccid_in_two_ranges_is_a_duplicate(write: Write, base: Data) -> None:
    base["subscriptions"] = [
        {"iccids": {"first": "894410000000000100", "count": 10}, "wallet": "w1", "plan": "p1"},
        {"iccids": {"first": "894410000000000105", "count": 10}, "wallet": "w2", "plan": "p1"},
    ]
    issues = issues_of(write(base))

    assert [i.path for i in issues] == ["subscriptions[1].iccids"]
    assert "5 ICCIDs of this range are already listed" in issues[0].message
    assert "'894410000000000105'" in issues[0].message


def test_split_percentages_may_have_four_decimals(write: Write, base: Data) -> None:
    version = base["plans"][0]["versions"][0]
    version["splits"]["usage"] = {"op": "33.3334", "platform": 66.6666}
    version["splits"]["mrc"] = {"platform": "0.0001", "op": "99.9999"}
    catalog = load_catalog(write(base))

    loaded = catalog.plans["p1"].versions[0]
    assert loaded.usage_splits == (Share("op", 333_334), Share("platform", 666_666))
    assert loaded.mrc_splits == (Share("platform", 1), Share("op", 999_999))
    assert loaded.fee_splits == loaded.mrc_splits  # fees default to the MRC split


def test_tiers_parse_into_base_units(write: Write, base: Data) -> None:
    version = base["plans"][0]["versions"][0]
    version["rates"]["data"]["ROW"] = {
        "per": "KB",
        "tiers": [
            {"up_to": "100MB", "price": "0.10"},
            {"up_to": "1.5GB", "price": "0.05"},
            {"price": "0.000001"},
        ],
    }
    catalog = load_catalog(write(base))

    rate = catalog.plans["p1"].versions[0].rates["data"]["ROW"]
    assert rate.per == 1024
    assert rate.tiers == (
        Tier(up_to=104_857_600, price=100_000_000_000),
        Tier(up_to=1_610_612_736, price=50_000_000_000),
        Tier(up_to=None, price=1_000_000),
    )
    flat = catalog.plans["p1"].versions[0].rates["data"]["EU"]
    assert flat.tiers == (Tier(None, 10_000_000_000),)
    assert flat.per == unit_size("data", "MB")


def test_the_docs_example_loads(tmp_path: Path) -> None:
    doc = (REPO / "docs" / "catalog.md").read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(.*?)```", doc, re.DOTALL)
    assert example is not None
    path = tmp_path / "doc.yaml"
    path.write_text(example.group(1), encoding="utf-8")

    catalog = load_catalog(path)

    assert len(catalog.subscriptions) == 501
    assert catalog.zones["EU"].networks == ("262-01", "262-02", "208")
    assert summarize(load_catalog(EXAMPLE)) in doc


def test_a_catalog_error_survives_pickling(write: Write) -> None:
    error = CatalogError(issues_of(write("- 1\n")))
    copy = pickle.loads(pickle.dumps(error))
    assert copy.issues == error.issues
    assert str(copy) == str(error)
