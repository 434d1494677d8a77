"""A catalog written in JSON (a YAML document too) reads alike, by the fast path; any issue
is reported as its YAML reading reports it, with its line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from engine.catalog import CatalogError, load_catalog, load_catalog_text
from engine.catalog.yaml_source import parse_json
from engine.domain.catalog import Catalog

from .conftest import EXAMPLE


def _as_json(text: str) -> str:
    """The example as JSON: its unquoted timestamps stay text, as the catalog reads them."""
    data = yaml.load(text, Loader=yaml.BaseLoader)  # every scalar as text
    return json.dumps(_typed(data, yaml.safe_load(text)), indent=1)


def _typed(raw: object, typed: object) -> object:
    if isinstance(raw, dict) and isinstance(typed, dict):
        return {k: _typed(v, typed[k]) for k, v in raw.items()}
    if isinstance(raw, list) and isinstance(typed, list):
        return [_typed(r, t) for r, t in zip(raw, typed, strict=True)]
    return typed if isinstance(typed, (bool, int, float)) or typed is None else raw


def test_the_example_in_json_is_the_same_catalog(tmp_path: Path) -> None:
    text = _as_json(EXAMPLE.read_text())
    assert parse_json(text, "x") is not None
    path = tmp_path / "catalog.json"
    path.write_text(text)
    expected = _fields(load_catalog(EXAMPLE))
    assert _fields(load_catalog(path)) == expected
    assert _fields(load_catalog_text(text, "x")) == expected


def _fields(catalog: Catalog) -> dict[str, object]:
    """Everything but the index (built from the rest, compared by identity)."""
    return {f: getattr(catalog, f) for f in catalog.__struct_fields__ if f != "index"}


def test_an_issue_in_json_names_its_line(tmp_path: Path) -> None:
    data = json.loads(_as_json(EXAMPLE.read_text()))
    data["subscriptions"][1]["wallet"] = "nobody"
    text = json.dumps(data, indent=1)
    line = next(n for n, t in enumerate(text.splitlines(), 1) if '"nobody"' in t)
    with pytest.raises(CatalogError) as err:
        load_catalog_text(text, "catalog.json")
    issue = err.value.issues[0]
    assert (issue.path, issue.line) == ("subscriptions[1].wallet", line)


def test_json_the_fast_path_leaves_to_yaml() -> None:
    assert parse_json('{"a": 1, "a": 2}', "x") is None  # YAML reports the key twice
    assert parse_json("zones: []", "x") is None  # not JSON
    assert parse_json('{"a": ', "x") is None  # broken: YAML says where
    assert parse_json('{"a": NaN}', "x") is None
    source = parse_json('{"a": 1e3, "b": 1.5, "c": "2026-01-01T00:00:00Z"}', "x")
    assert source is not None
    assert source.data == {"a": "1e3", "b": 1.5, "c": "2026-01-01T00:00:00Z"}  # as YAML 1.1
