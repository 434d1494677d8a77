"""``rating-engine generate``: the same seed writes the same CDRs, as many as asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli import generate
from engine.cli.args import UsageError

from .parsing import run

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml")


def test_the_same_seed_writes_the_same_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, two, other = tmp_path / "1.jsonl", tmp_path / "2.jsonl", tmp_path / "3.jsonl"
    common = ("generate", "--catalog", EXAMPLE, "--sims", "5", "--cdrs", "40")
    assert run(generate, *common, "--out", str(one)) == 0
    assert run(generate, *common, "--out", str(two)) == 0
    assert run(generate, *common, "--seed", "2", "--out", str(other)) == 0
    assert len(one.read_text().splitlines()) == 40
    assert one.read_bytes() == two.read_bytes() != other.read_bytes()
    assert f"wrote 40 CDRs to {one}" in capsys.readouterr().err


def test_commands_are_written_beside_when_asked(tmp_path: Path) -> None:
    commands = tmp_path / "commands.jsonl"
    argv = ("generate", "--catalog", EXAMPLE, "--sims", "2", "--cdrs", "1")
    run(generate, *argv, "--out", str(tmp_path / "cdrs.jsonl"), "--commands-out", str(commands))
    assert commands.read_text().strip()


def test_a_negative_count_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--cdrs must be >= 0"):
        run(generate, "generate", "--catalog", EXAMPLE, "--sims", "1", "--cdrs", "-1")
