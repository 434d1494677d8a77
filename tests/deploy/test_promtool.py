"""The Prometheus configuration and alert rules, checked and unit-tested by promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    # Not a skip: without promtool the rules would ship untested (`.ci/run` installs it).
    assert path, (
        "promtool not found: install Debian's prometheus package (apt-get install prometheus)"
    )
    return path


def _run(promtool: str, *args: str) -> str:
    result = subprocess.run(
        [promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


def test_config_is_valid(promtool: str) -> None:
    assert "SUCCESS" in _run(promtool, "check", "config", "prometheus.yml")


def test_rules_are_valid(promtool: str) -> None:
    assert "SUCCESS" in _run(promtool, "check", "rules", "alerts.yml")


def test_every_rule_fires_and_stays_quiet_in_its_unit_tests(promtool: str) -> None:
    assert "SUCCESS" in _run(promtool, "test", "rules", "alerts_test.yml")


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert alerts - firing == set(), "alerts never seen firing"
    assert alerts - quiet == set(), "alerts never seen quiet"
