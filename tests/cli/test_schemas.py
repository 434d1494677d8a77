"""``rating-engine schemas``: writes the JSON Schemas; ``--check`` fails on a stale one."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli import schemas

from .parsing import run


def test_written_schemas_pass_the_check_until_one_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(schemas, "schemas", "--dir", str(tmp_path)) == 0
    written = sorted(tmp_path.iterdir())
    assert written
    assert run(schemas, "schemas", "--dir", str(tmp_path), "--check") == 0
    written[0].write_text("{}\n")
    capsys.readouterr()
    assert run(schemas, "schemas", "--dir", str(tmp_path), "--check") == 1
    assert written[0].name in capsys.readouterr().err
