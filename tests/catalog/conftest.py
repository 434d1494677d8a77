"""Fixtures for catalog tests: a small valid catalog as data, and a way to write one."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.catalog import CatalogError, CatalogIssue, load_catalog
from engine.domain.catalog import Catalog

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "catalog.yaml"

# The smallest catalog that uses every section; tests change one thing in a copy of it.
_BASE: dict[str, Any] = {
    "providers": [{"id": "op", "name": "Operator"}, {"id": "platform"}],
    "zones": [
        {"id": "EU", "networks": ["262-01", "208-*"]},
        {"id": "ROW", "networks": ["724-*"]},
    ],
    "wallets": [{"id": "w1", "currency": "EUR"}, {"id": "w2", "currency": "EUR"}],
    "plans": [
        {
            "id": "p1",
            "versions": [
                {
                    "version": 1,
                    "effective_from": "2026-01-01T00:00:00Z",
                    "currency": "EUR",
                    "rates": {"data": {"EU": {"price": "0.01", "per": "MB"}}},
                    "addons": [{"id": "ip", "mrc": "1.00", "splits": {"platform": 100}}],
                    "splits": {"usage": {"op": 60, "platform": 40}, "mrc": {"platform": 100}},
                }
            ],
        }
    ],
    "pools": [
        {"id": "pool1", "wallet": "w1", "kind": "static", "zones": ["EU"], "allowance": "1GB"}
    ],
    "subscriptions": [
        {"iccid": "894410000000000001", "wallet": "w1", "plan": "p1", "pool": "pool1"}
    ],
    "vouchers": [{"code": "V1", "wallet": "w1", "amount": "5.00"}],
}

Write = Callable[[object], Path]
Data = dict[str, Any]


@pytest.fixture
def base() -> Data:
    """A fresh copy of the small valid catalog, to change freely."""
    return copy.deepcopy(_BASE)


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """Write data (dumped as YAML) or text to a catalog file; return its path."""

    def write(content: object) -> Path:
        path = tmp_path / "catalog.yaml"
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    return write


def load(path: Path) -> Catalog:
    return load_catalog(path)


def issues_of(path: Path) -> list[CatalogIssue]:
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    return caught.value.issues


DELETE = object()
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")

Changes = list[tuple[str, object]]
Expected = list[tuple[str, str]]
Case = tuple[Changes, Expected]


def change(data: Data, path: str, value: object) -> None:
    """Set, append (index = length) or with ``DELETE`` remove the value at ``path``."""
    steps: list[str | int] = [name if name else int(index) for name, index in _STEP.findall(path)]
    target: Any = data
    for step in steps[:-1]:
        target = target[step]
    if value is DELETE:
        del target[steps[-1]]
    elif isinstance(target, list) and steps[-1] == len(target):
        target.append(value)
    else:
        target[steps[-1]] = value


def assert_issues(write: Write, base: Data, changes: Changes, expected: Expected) -> None:
    """After ``changes``, loading reports exactly the ``expected`` paths, with those words."""
    for path, value in changes:
        change(base, path, value)

    issues = issues_of(write(base))

    assert sorted(issue.path for issue in issues) == sorted(path for path, _ in expected)
    for path, words in expected:
        messages = [issue.message for issue in issues if issue.path == path]
        assert any(words in message for message in messages), (words, messages)
    assert all(issue.line is not None for issue in issues)


def case_id(case: Case) -> str:
    return case[1][0][0]
