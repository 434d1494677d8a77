"""The events of a generated run are pinned by a digest.

Refactoring and speed work must not change a single byte of what the engine decides. Only a
rule change, with tests of its own, may update ``DIGEST`` (and says so in its commit).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from engine.cli import main

REPO = Path(__file__).resolve().parents[2]
CATALOG = str(REPO / "examples" / "catalog.yaml")

DIGEST = "2ea39d2b1211bec57a0a18062683cef151e68464ab283c65ff1510a88c16e7b7"
"""sha256 of ``--events-out`` for the run below: 3,000 SIMs, 40,000 CDRs with 2% faults,
seed 11, and the generated commands (top-ups, vouchers, plan changes, SIM moves, ticks).
Its history: 1a2c8972…e218b1; then 361fefb1…cf320 when pools true up (the same events
and 9 ``PoolCycleClosed`` at the end of their ticks); then this, when ``BarSims`` /
``UnbarSims`` became ``SimsBarred`` / ``SimsUnbarred`` (the same bytes with those type tags
renamed)."""


def test_a_generated_run_decides_exactly_the_pinned_events(tmp_path: Path) -> None:
    cdrs, commands, events = tmp_path / "cdrs", tmp_path / "commands", tmp_path / "events"
    generate = ["generate", "--catalog", CATALOG, "--sims", "3000", "--cdrs", "40000"]
    generate += ["--seed", "11", "--faults", "0.02", "--out", str(cdrs)]
    assert main([*generate, "--commands-out", str(commands)]) == 0
    rate = ["rate", "--catalog", CATALOG, "--input", str(cdrs), "--commands", str(commands)]
    assert main([*rate, "--events-out", str(events), "--json"]) == 0
    data = events.read_bytes()
    assert data.count(b"\n") > 40_000
    assert hashlib.sha256(data).hexdigest() == DIGEST
