"""The generator: the same seed gives the same bytes; CDRs in time order from the SIMs
asked for; faults at the share asked for; a count of SIMs the catalog cannot give refused."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import msgspec
import pytest

from engine.catalog import load_catalog
from engine.codec import Rejected, decode_cdr
from engine.domain import Cdr
from engine.offline.generate import GenerateError, generate_cdrs, generate_commands

CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml")


def test_the_same_seed_gives_the_same_bytes() -> None:
    one = list(generate_cdrs(CATALOG, 10, 200, seed=3, days=7))
    assert one == list(generate_cdrs(CATALOG, 10, 200, seed=3, days=7))
    assert one != list(generate_cdrs(CATALOG, 10, 200, seed=4, days=7))
    assert list(generate_commands(CATALOG, 3, 7)) == list(generate_commands(CATALOG, 3, 7))


def test_cdrs_come_in_time_order_from_the_sims_asked_for() -> None:
    decoded = [decode_cdr(line) for line in generate_cdrs(CATALOG, 4, 300, 1, 7, faults=0.0)]
    cdrs = [c for c in decoded if isinstance(c, Cdr)]
    assert len(cdrs) == 300
    assert len({c.iccid for c in cdrs}) <= 4
    assert all(c.iccid in CATALOG.subscriptions for c in cdrs)
    starts = [c.started_at for c in cdrs]
    assert starts == sorted(starts)


def test_faults_are_records_the_engine_rejects() -> None:
    lines = list(generate_cdrs(CATALOG, 4, 2000, 1, 7, faults=0.05))
    rejected = [r for r in map(decode_cdr, lines) if isinstance(r, Rejected)]
    assert 0 < len(rejected) < 2000 * 0.2


def test_every_wallet_ticks_daily() -> None:
    ticks = [
        msgspec.json.decode(line)
        for line in generate_commands(CATALOG, 1, days=2)
        if b'"Tick"' in line
    ]
    assert len(ticks) == 3 * len(CATALOG.wallets)
    assert {datetime.fromisoformat(t["at"]).day for t in ticks} == {1, 2, 3}


def test_more_sims_than_the_catalog_has_are_refused() -> None:
    with pytest.raises(GenerateError, match="asked for"):
        list(generate_cdrs(CATALOG, len(CATALOG.subscriptions) + 1, 1, 1))
