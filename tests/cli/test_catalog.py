"""``rating-engine catalog check``: a catalog validated and summarized, or counted as JSON;
``catalog publish``: checked, refused when it strands live state, published, told."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.catalog import CatalogError, load_catalog
from engine.cli import catalog

from .parsing import run

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"


def test_a_good_catalog_is_ok_and_summarized(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(catalog, "catalog", "check", str(EXAMPLE)) == 0
    first, *summary = capsys.readouterr().out.splitlines()
    assert first == f"{EXAMPLE}: ok"
    assert summary[0].split() == ["providers:", str(len(load_catalog(EXAMPLE).providers))]


def test_as_json_it_counts_each_section(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(catalog, "catalog", "check", str(EXAMPLE), "--json") == 0
    loaded = load_catalog(EXAMPLE)
    answer = json.loads(capsys.readouterr().out)
    assert answer["ok"] is True
    assert answer["counts"]["plans"] == len(loaded.plans)
    assert answer["counts"]["subscriptions"] == len(loaded.subscriptions)


def test_a_bad_catalog_is_the_catalogs_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("zones: 1\n")
    with pytest.raises(CatalogError):  # main turns it into a message and exit 1
        run(catalog, "catalog", "check", str(bad))
