"""A store rated under the example catalog, and the changed catalog to replay it with, for the
replay tests (tests/offline/test_replay.py, tests/offline/test_replay_jobs.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.catalog import load_catalog
from engine.domain import Catalog
from engine.offline.generate import generate_cdrs, generate_commands, write_lines
from engine.offline.run import rate_all
from engine.store import open_store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"

CHANGES = (
    ('EU: {price: "0.05"}', 'EU: {price: "0.06"}'),
    ('APAC: {price: "0.15", per: MB}', 'APAC: {price: "0.17", per: MB}'),
    (
        'usage: {telco-a: 55, platform: "33.3333", reseller: "11.6667"}',
        'usage: {telco-a: 50, platform: "38.3333", reseller: "11.6667"}',
    ),
)
"""Each first occurrence: iot-eu v1 prices (v2 from October keeps its own), iot-global split."""


@dataclass(frozen=True)
class Rated:
    """What was rated (``cdrs``, ``commands``), the SQLite store it was rated into, and the
    changed catalog (its file and the catalog loaded from it)."""

    cdrs: Path
    commands: Path
    store: Path
    new_catalog_path: Path
    new_catalog: Catalog


def rated_store(root: Path, sims: int, cdrs: int, seed: int) -> Rated:
    """Rate ``cdrs`` generated CDRs of ``sims`` SIMs (and the generated commands) with the
    example catalog into ``root/rated.db``, and write the changed catalog to ``root/new.yaml``."""
    old = load_catalog(EXAMPLE)
    cdrs_path, commands_path = root / "cdrs.jsonl", root / "commands.jsonl"
    write_lines(cdrs_path, generate_cdrs(old, sims, cdrs, seed=seed))
    write_lines(commands_path, generate_commands(old, seed=seed))
    store = open_store(f"sqlite:///{root / 'rated.db'}")
    try:
        rate_all(old, cdrs_path, commands_path, store=store)
    finally:
        store.close()
    text = EXAMPLE.read_text()
    for before, after in CHANGES:
        assert before in text, f"the example catalog no longer has {before!r}"
        text = text.replace(before, after, 1)
    new_path = root / "new.yaml"
    new_path.write_text(text)
    return Rated(cdrs_path, commands_path, root / "rated.db", new_path, load_catalog(new_path))
