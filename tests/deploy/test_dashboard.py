"""The dashboard and the alert rules name only metrics the code exports, so renaming a
metric breaks this test instead of silently emptying a panel or muting an alert."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from engine.stream.metrics import Metrics, SinkMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "rating-engine.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"

# Series Prometheus itself makes for every target.
BUILTIN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "inf", "nan",
}  # fmt: skip
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "gauge": ("",),
}


def exported() -> set[str]:
    """Every series name the worker's and the sink's registries can expose (a labelled
    metric exposes nothing until first used, so names come from the families' types)."""
    names: set[str] = set()
    registries: list[CollectorRegistry] = [Metrics().registry, SinkMetrics().registry]
    for registry in registries:
        for family in registry.collect():
            names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: what is left after strings, label
    matchers, ranges, grouping clauses, function calls, keywords and numbers go."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\w+", "", text)
    text = re.sub(r"\b\d+(\.\d+)?([eE][+-]?\d+)?(ms|[smhdwy])*\b", "", text)  # numbers, 1h30m
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        name = match.group()
        called = text[match.end() :].lstrip().startswith("(")
        if called or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    return out


def alert_exprs() -> list[tuple[str, str]]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [(r.get("alert") or r["record"], r["expr"]) for g in rules["groups"] for r in g["rules"]]


def test_the_extractor_finds_metrics_and_nothing_else() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(rating_ingest_latency_seconds_bucket{job="w"}'
        "[$__rate_interval]))) > 2.5 and on () time() - max(rating_sink_last_commit_timestamp_"
        'seconds) > 300 unless absent(up{job="rating-worker"} == 1) offset 5m'
    )
    assert metric_names(expr) == {
        "rating_ingest_latency_seconds_bucket",
        "rating_sink_last_commit_timestamp_seconds",
        "up",
    }


def test_the_exported_names_follow_the_metric_types() -> None:
    names = exported()
    assert {"rating_cdrs_received_total", "rating_ingest_latency_seconds_bucket"} <= names
    assert {"rating_consumer_lag", "rating_sink_lag", "rating_store_position"} <= names
    assert "rating_cdrs_received" not in names


@pytest.mark.parametrize(
    ("where", "exprs"), [("dashboard", dashboard_exprs), ("alerts", alert_exprs)]
)
def test_every_metric_named_is_exported(where: str, exprs: object) -> None:
    known = exported() | BUILTIN
    found = [(title, expr) for title, expr in exprs()]  # type: ignore[operator]
    assert found, f"no PromQL found in the {where}"
    unknown = {
        (title, name) for title, expr in found for name in metric_names(expr) if name not in known
    }
    assert not unknown, f"{where} names metrics the code does not export: {sorted(unknown)}"


def test_the_dashboard_covers_what_operators_watch() -> None:
    used = {name for _, expr in dashboard_exprs() for name in metric_names(expr)}
    for name in (
        "rating_cdrs_received_total",
        "rating_cdrs_rejected_total",
        "rating_ingest_latency_seconds_bucket",
        "rating_consumer_lag",
        "rating_wallets_suspended",
        "rating_events_total",
        "rating_partitions_recovering",
        "rating_sink_lag",
        "rating_store_position",
    ):
        assert name in used, name
    # Every panel reads the datasource the provisioning declares, through the variable.
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())
    assert [d["type"] for d in datasource["datasources"]] == ["prometheus"]
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards" / "rating-engine.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/rating-engine.json:{path}/rating-engine.json:ro" in mounts
