"""Forgetting unreachable cycles changes no event, nor the run's summary (its pool rows count
the cycles the state forgot): a long generated run, with and without."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from engine.cli import main
from engine.domain import WalletState

REPO = Path(__file__).resolve().parents[2]
CATALOG = str(REPO / "examples" / "catalog.yaml")


def _rate(tmp: Path, name: str, capsys: pytest.CaptureFixture[str]) -> tuple[bytes, str]:
    """The run's events, and its summary as JSON."""
    events = tmp / name
    rate = ["rate", "--catalog", CATALOG, "--input", str(tmp / "cdrs"), "--json"]
    capsys.readouterr()
    assert main([*rate, "--commands", str(tmp / "commands"), "--events-out", str(events)]) == 0
    return events.read_bytes(), capsys.readouterr().out


def test_a_run_over_seven_months_decides_the_same_events_without_forgetting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    generate = ["generate", "--catalog", CATALOG, "--sims", "1000", "--cdrs", "12000"]
    generate += ["--days", "200", "--seed", "5", "--out", str(tmp_path / "cdrs")]
    assert main([*generate, "--commands-out", str(tmp_path / "commands")]) == 0
    evolve = sys.modules["engine.domain.evolve"]
    forgotten: list[int] = []
    pools: list[int] = []

    def counting(state: WalletState) -> WalletState:
        after = real(state)
        forgotten.append(len(state.tier_used) - len(after.tier_used))
        pools.append(len(state.pool_used) - len(after.pool_used))
        return after

    real = evolve.forget
    monkeypatch.setattr(evolve, "forget", counting)
    with_forgetting = _rate(tmp_path, "forgetting", capsys)
    assert sum(forgotten) > 1000  # the run does forget counters
    assert sum(pools) > 0  # and pool figures
    monkeypatch.setattr(evolve, "forget", lambda state: state)
    assert _rate(tmp_path, "keeping", capsys) == with_forgetting
