"""The operator's documents keep up with the rules and the settings they describe."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from .test_manifests import _names_read_by_the_code

REPO = Path(__file__).resolve().parents[2]
OPERATIONS = (REPO / "docs" / "operations.md").read_text()
DEPLOY = (REPO / "docs" / "deploy.md").read_text()


def _alerts() -> list[dict[str, object]]:
    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "alerts.yml").read_text())
    return [r for g in rules["groups"] for r in g["rules"] if "alert" in r]


def test_every_alert_has_a_runbook_entry() -> None:
    headings = set(re.findall(r"^### (\w+)$", OPERATIONS, re.M))
    for rule in _alerts():
        name = str(rule["alert"])
        assert name in headings, f"docs/operations.md has no runbook for {name}"
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert annotations["runbook"] == f"docs/operations.md#{name.lower()}"
        section = OPERATIONS.split(f"### {name}\n", 1)[1].split("\n### ", 1)[0]
        for part in ("**Means**", "**Confirm**", "**Do**"):
            assert part in section, f"{name}: the runbook lacks {part}"


def test_every_setting_the_code_reads_is_documented() -> None:
    for name in sorted(_names_read_by_the_code()):
        assert f"`{name}`" in DEPLOY, f"docs/deploy.md does not document {name}"
