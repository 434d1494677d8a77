"""The README's worked example is run here, so the document cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _json_blocks(text: str) -> list[str]:
    return re.findall(r"```json\n(.*?)\n```", text, flags=re.S)


def test_worked_example_produces_the_documented_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    section = README.split("<!-- worked-example -->", 1)[1]
    cdr_line, documented_event = _json_blocks(section)[:2]
    cdrs = tmp_path / "doc.jsonl"
    cdrs.write_text(cdr_line + "\n")
    events = tmp_path / "ev.jsonl"
    catalog = str(ROOT / "examples" / "catalog.yaml")
    assert (
        main(["rate", "--catalog", catalog, "--input", str(cdrs), "--events-out", str(events)]) == 0
    )
    capsys.readouterr()
    produced = [line for line in events.read_text().splitlines() if '"UsageRated"' in line]
    assert produced == [documented_event]


def test_readme_commands_exist() -> None:
    from engine.cli import build_parser

    parser = build_parser()
    documented = set(re.findall(r"`rating-engine ([a-z][a-z-]*)", README))
    choices = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert documented <= set(choices), documented - set(choices)
