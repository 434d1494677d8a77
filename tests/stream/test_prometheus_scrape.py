"""A real Prometheus server scrapes a running worker; its query API reports what was sent."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import yaml

from engine.cli import main
from engine.local import free_ports

from .harness import CATALOG, Stack, read_topic

TOP_UP = {
    "type": "TopUp",
    "command_id": "scrape-top-up",
    "wallet_id": "initech",
    "at": "2026-08-31T00:00:00Z",
    "amount": "25.00",
    "currency": "EUR",
}
JOB = "rating-worker"
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


class Prometheus:
    """``prometheus`` (Debian's package) on a free port with its own config and storage."""

    def __init__(self, tmp_path: Path, target: str) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus not found: install Debian's prometheus package"
        self.port = free_ports(1)[0]
        config = tmp_path / "prometheus.yml"
        scrape = {"job_name": JOB, "static_configs": [{"targets": [target]}]}
        settings = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        config.write_text(yaml.safe_dump({"global": settings, "scrape_configs": [scrape]}))
        self.log = (tmp_path / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def get(self, path: str) -> bytes:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body: bytes = response.read()
            return body

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "prometheus exited; see prometheus.log"
            try:
                self.get("/-/ready")
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("prometheus did not become ready")

    def query(self, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Instant vector of ``expr``, keyed by each sample's labels (``__name__``, ``job``
        and ``instance`` left out)."""
        body = json.loads(self.get("/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
        assert body["status"] == "success", body
        out = {}
        for item in body["data"]["result"]:
            labels = item["metric"]
            key = tuple(
                sorted(
                    (k, v) for k, v in labels.items() if k not in {"__name__", "job", "instance"}
                )
            )
            out[key] = float(item["value"][1])
        return out

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def _deploy_exprs() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "rating-engine.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return exprs + [r["expr"] for g in rules["groups"] for r in g["rules"]]


@pytest.fixture
def stack(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(kafka_bootstrap, tmp_path)
    yield s
    s.stop_worker()


def _inputs(tmp_path: Path) -> tuple[Path, Path]:
    """Generated CDRs with a share of bad records of every kind, and one top-up.

    Split billing is left out (as in test_worker.py): offline the payer is debited at once,
    in the stream by a later command, so event counts would differ while it is in flight.
    """
    raw = tmp_path / "raw.jsonl"
    args = ["generate", "--catalog", str(CATALOG), "--sims", "400", "--cdrs", "1500"]
    assert main([*args, "--seed", "5", "--faults", "0.05", "--out", str(raw)]) == 0
    cdrs = tmp_path / "cdrs.jsonl"
    cdrs.write_bytes(raw.read_bytes().replace(b'"apn":"partner.acme"', b'"apn":"iot.telco"'))
    commands = tmp_path / "commands.jsonl"
    commands.write_bytes(msgspec.json.encode(TOP_UP) + b"\n")
    return cdrs, commands


def _expected(
    tmp_path: Path, cdrs: Path, commands: Path
) -> tuple[dict[str, dict[str, float]], int]:
    """The counters the worker must export, from the offline run of the same inputs, and how
    many CDRs reach the rating agent (those not rejected before routing)."""
    events_out, rejected_out = tmp_path / "events.jsonl", tmp_path / "rejected.jsonl"
    args = ["rate", "--catalog", str(CATALOG), "--input", str(cdrs), "--commands", str(commands)]
    assert main([*args, "--events-out", str(events_out), "--rejected-out", str(rejected_out)]) == 0
    events = [msgspec.json.decode(x) for x in events_out.read_bytes().splitlines()]
    rejected = [msgspec.json.decode(x) for x in rejected_out.read_bytes().splitlines()]
    by_type = Counter(e["type"] for e in events)
    reasons = Counter(e["reason"] for e in events if e["type"] == "CdrRejected")
    reasons.update(r["reason"] for r in rejected)
    lines = [x for x in cdrs.read_bytes().splitlines() if x.strip()]
    counters = {
        "rating_cdrs_received_total": {"": float(len(lines))},
        "rating_commands_received_total": {"": 1.0},
        "rating_cdrs_rated_total": {"": float(by_type["UsageRated"])},
        "rating_cdrs_rejected_total": {k: float(v) for k, v in reasons.items()},
        "rating_events_total": {k: float(v) for k, v in by_type.items()},
    }
    return counters, len(lines) - len(rejected)


def _scraped(prometheus: Prometheus) -> dict[str, dict[str, float]]:
    def flat(expr: str) -> dict[str, float]:
        return {",".join(v for _, v in key): value for key, value in prometheus.query(expr).items()}

    return {
        name: flat(f'{name}{{job="{JOB}"}}')
        for name in (
            "rating_cdrs_received_total",
            "rating_commands_received_total",
            "rating_cdrs_rated_total",
            "rating_cdrs_rejected_total",
            "rating_events_total",
        )
    }


def test_prometheus_scrapes_what_the_worker_counted(stack: Stack, tmp_path: Path) -> None:
    cdrs, commands = _inputs(tmp_path)
    expected, routed = _expected(tmp_path, cdrs, commands)
    assert {"malformed", "unknown_sim"} <= set(expected["rating_cdrs_rejected_total"])
    assert expected["rating_events_total"]["GrantAdded"] >= 1  # the top-up

    metrics_port = free_ports(1)[0]
    stack.start_worker("--metrics-port", str(metrics_port))
    prometheus = Prometheus(tmp_path, f"127.0.0.1:{metrics_port}")
    try:
        prometheus.wait_ready()
        stack.cli("command", "--input", str(commands))
        read_topic(stack.bootstrap, stack.topics.wallet_events.name, until=1, timeout=60)
        stack.cli("publish", "--input", str(cdrs), "--no-progress")

        deadline = time.monotonic() + 180
        scraped = _scraped(prometheus)
        while scraped != expected and time.monotonic() < deadline:
            time.sleep(1.0)
            scraped = _scraped(prometheus)
        assert scraped == expected

        # The target is healthy in Prometheus' eyes, and the histogram made it too.
        assert prometheus.query(f'up{{job="{JOB}"}}') == {(): 1.0}
        count = prometheus.query(f'rating_ingest_latency_seconds_count{{job="{JOB}"}}')
        assert count == {(): float(routed)}

        # Every expression of the dashboard and the alert rules is valid PromQL to this
        # server (query() asserts the API's status is success).
        for expr in _deploy_exprs():
            prometheus.query(expr.replace("$__rate_interval", "1m"))
    finally:
        prometheus.stop()
