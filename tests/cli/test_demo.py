"""``rating-engine demo``: what it is asked for reaches the demo; nothing to do is refused.
(The demo itself: tests/test_demo.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

import engine.demo
from engine.cli import demo
from engine.cli.args import UsageError
from engine.demo import DemoSettings

from .parsing import run


def test_the_flags_become_the_demos_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[DemoSettings] = []
    monkeypatch.setattr(engine.demo, "run_demo", lambda s: asked.append(s) or 0)
    argv = ("demo", "--out", "here", "--cdrs", "10", "--sims", "2")
    assert run(demo, *argv) == 0
    assert asked == [
        DemoSettings(catalog=Path("examples/catalog.yaml"), out=Path("here"), sims=2, cdrs=10)
    ]


@pytest.mark.parametrize("flag", ["--cdrs", "--sims"])
def test_no_cdrs_or_no_sims_is_refused(flag: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.demo, "run_demo", lambda s: pytest.fail("the demo ran"))
    with pytest.raises(UsageError, match="must be >= 1"):
        run(demo, "demo", flag, "0")
