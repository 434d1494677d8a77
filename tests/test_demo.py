"""``rating-engine demo`` end to end, twice in the same folder: broker, worker, sink, store,
projections and the summary, started and stopped by the command itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from engine.demo import fresh_folder

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
