"""``rating-engine rate``: a CDR file rated in process, its summary printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import generate, rate
from engine.cli.args import UsageError

from .parsing import run

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml")


def test_a_file_is_rated_and_every_event_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cdrs, events = tmp_path / "cdrs.jsonl", tmp_path / "events.jsonl"
    run(
        generate,
        "generate",
        "--catalog",
        EXAMPLE,
        "--sims",
        "3",
        "--cdrs",
        "20",
        "--faults",
        "0",
        "--out",
        str(cdrs),
    )
    capsys.readouterr()
    code = run(
        rate,
        "rate",
        "--catalog",
        EXAMPLE,
        "--input",
        str(cdrs),
        "--events-out",
        str(events),
        "--json",
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["inputs"], summary["rated"], summary["rejected"]) == (20, 20, {})
    assert all(w["reconciled"] for w in summary["wallets"])
    written = events.read_text().splitlines()
    assert len(written) == sum(summary["events"].values())


def test_clickhouse_without_a_store_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--clickhouse needs --store"):
        run(rate, "rate", "--catalog", EXAMPLE, "--input", "x", "--clickhouse", "chdb:///x")
