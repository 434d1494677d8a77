"""Forgetting unreachable cycles changes no event: a long generated run, with and without."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from engine.cli import main
from engine.domain import WalletState

REPO = Path(__file__).resolve().parents[2]
CATALOG = str(REPO / "examples" / "catalog.yaml")


def _rate(tmp: Path, name: str) -> bytes:
    events = tmp / name
    rate = ["rate", "--catalog", CATALOG, "--input", str(tmp / "cdrs")]
    assert main([*rate, "--commands", str(tmp / "commands"), "--events-out", str(events)]) == 0
    return events.read_bytes()


def test_a_run_over_seven_months_decides_the_same_events_without_forgetting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate = ["generate", "--catalog", CATALOG, "--sims", "1000", "--cdrs", "12000"]
    generate += ["--days", "200", "--seed", "5", "--out", str(tmp_path / "cdrs")]
    assert main([*generate, "--commands-out", str(tmp_path / "commands")]) == 0
    evolve = sys.modules["engine.domain.evolve"]
    forgotten: list[int] = []

    def counting(state: WalletState) -> WalletState:
        after = real(state)
        forgotten.append(len(state.tier_used) - len(after.tier_used))
        return after

    real = evolve.forget
    monkeypatch.setattr(evolve, "forget", counting)
    with_forgetting = _rate(tmp_path, "forgetting")
    assert sum(forgotten) > 1000  # the run does forget counters
    monkeypatch.setattr(evolve, "forget", lambda state: state)
    assert _rate(tmp_path, "keeping") == with_forgetting
