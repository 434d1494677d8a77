"""``rating-engine demo`` end to end, twice in the same folder: broker, worker, sink, store,
projections and the summary, started and stopped by the command itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from engine.demo import caught_up, fresh_folder
from engine.local.process import Scrape

REPO = Path(__file__).resolve().parents[1]


def run_demo(out: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP"}
    argv = [sys.executable, "-m", "engine.cli", "demo", "--out", str(out)]
    argv += ["--cdrs", "1500", "--sims", "300"]
    return subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_demo_runs_end_to_end_and_again(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    for _ in range(2):
        done = run_demo(out)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        text = done.stdout
        assert "hash chains intact" in text
        for title in ("Top wallets by spend", "Pools", "Revenue by provider", "Suspensions"):
            assert title in text
        for wallet in ("acme", "globex", "initech", "umbrella"):
            assert wallet in text
        assert "Stopping the Kafka broker" in text
        rated = next(line for line in text.splitlines() if "CDRs rated" in line)
        assert rated.startswith("1,4") or rated.startswith("1,5"), rated
    # What it started, it stopped: no worker or sink of this run is left behind.
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(out) not in ps


def test_each_run_starts_in_an_emptied_folder(tmp_path: Path) -> None:
    """What lets the demo run twice in one folder: an earlier run's files are gone first."""
    out = tmp_path / "demo" / "run"
    assert fresh_folder(out) == out and out.is_dir()
    (out / "events.db").write_text("an earlier run")
    (out / "logs").mkdir()
    fresh_folder(out)
    assert list(out.iterdir()) == []


def _scrape(**counts: float) -> Scrape:
    """Metrics as a worker's or a sink's ``/metrics`` parse, named without ``rating_``."""
    return Scrape({f"rating_{name}": value for name, value in counts.items()})


SINK_IDLE = _scrape(sink_records_total=0, store_position=0, projection_position=0, sink_lag=0)


def test_a_run_is_not_rated_while_enrich_has_read_what_no_wallet_decided() -> None:
    """The race the demo once lost: every CDR read, two rejected by enrich, the rest on
    their way to the wallets' agent, and every count of decisions still 0 on both sides."""
    read = _scrape(cdrs_received_total=1500, cdrs_rejected_total=2, decisions_total=0)
    assert not caught_up(read, SINK_IDLE, 1500)


def test_a_run_is_rated_once_every_cdr_read_is_finished_and_stored() -> None:
    sink = _scrape(sink_records_total=900, store_position=2400, projection_position=2400)
    done = {"cdrs_received_total": 1500, "cdrs_rated_total": 1490, "decisions_total": 900}
    rejected = {"cdrs_rejected_total": 8, "redeliveries_skipped_total": 2}
    assert caught_up(_scrape(**done, **rejected), sink, 1500)
    # One CDR short, one held back, one not yet published or one decision not yet stored:
    assert not caught_up(_scrape(**done, cdrs_rejected_total=8), sink, 1500)
    assert not caught_up(_scrape(**done, **rejected, cdrs_held=1), sink, 1500)
    assert not caught_up(_scrape(**done, **rejected), sink, 1501)
    assert not caught_up(_scrape(**{**done, "decisions_total": 901}, **rejected), sink, 1500)
