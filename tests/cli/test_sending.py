"""What every verb that sends commands shares: the instant, the checks before sending, a
file refused whole, and the dry run."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

import pytest

from engine.cli import sending
from engine.cli.args import UsageError
from engine.cli.sending import moment, refuse_file, refuse_what_any_wallet_would, send, show
from engine.domain import Tick
from engine.domain.commands import OpenWallet, SuspendWallet
from engine.offline.inputs import InputError
from engine.stream.publisher import PublishResult

AT = datetime(2026, 10, 1, tzinfo=UTC)


def test_the_instant_is_at_or_now_to_the_second() -> None:
    assert moment(argparse.Namespace(at="2026-10-01T00:00:00Z")) == AT
    now = moment(argparse.Namespace(at=None))
    assert now.tzinfo is not None and now.microsecond == 0
    assert abs((datetime.now(UTC) - now).total_seconds()) < 60
    with pytest.raises(UsageError, match="needs a UTC offset"):
        moment(argparse.Namespace(at="2026-10-01T00:00:00"))


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({"currency": "eur"}, "ISO 4217"),
        ({"currency": "EUR", "overdraft_limit": "-5"}, "overdraft_limit: cannot be negative"),
        ({"currency": "EUR", "suspend_at": "1,5"}, "suspend_at: not a decimal number"),
        ({"currency": "EUR", "thresholds": ("10", "ten")}, r"thresholds\[1\]: not a decimal"),
        ({"currency": "EUR", "resume_at": "-10"}, "resume_at: must be at or above suspend_at"),
        ({"currency": "EUR", "cycle_anchor_day": 29}, "cycle_anchor_day: must be 1..28"),
    ],
)
def test_terms_no_wallet_could_open_on_are_refused(terms: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        refuse_what_any_wallet_would(OpenWallet("o-1", "w", AT, **terms))  # type: ignore[arg-type]


def test_a_suspension_by_hand_must_say_why() -> None:
    with pytest.raises(UsageError, match="--reason must say why"):
        refuse_what_any_wallet_would(SuspendWallet("s-1", "w", AT, reason="   "))
    refuse_what_any_wallet_would(SuspendWallet("s-1", "w", AT, reason="fraud check"))


def test_a_file_is_refused_whole_listing_ten_bad_lines_then_a_count() -> None:
    refuse_file([])
    with pytest.raises(InputError) as refused:
        refuse_file([f"f:{n}: bad" for n in range(1, 13)])
    lines = str(refused.value).splitlines()
    assert lines[:2] == ["f:1: bad", "f:2: bad"] and lines[-2:] == [
        "... and 2 more",
        "nothing was sent",
    ]
    assert len(lines) == 12


def test_a_dry_run_shows_what_would_be_sent(capsys: pytest.CaptureFixture[str]) -> None:
    commands = [Tick("t-1", "w1", AT), Tick("t-2", "w2", AT)]
    assert show(commands, as_json=False) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["command_id"] for line in out.splitlines()] == ["t-1", "t-2"]
    assert err.strip() == "dry run: 2 Tick for 2 wallet(s); nothing was sent"
    assert show(commands, as_json=True) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 2


def test_a_bulk_send_shows_a_bar_on_a_terminal_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[bool] = []

    def publish(*_args: object, progress: bool) -> PublishResult:
        shown.append(progress)
        return PublishResult("f", "t", "b")

    monkeypatch.setattr(sending, "publish_commands", publish)
    monkeypatch.setattr(sending.sys.stderr, "isatty", lambda: True)
    args = argparse.Namespace(dry_run=False, json=True, bootstrap="b", progress=None)
    for flag in (None, False, True):
        args.progress = flag
        assert send(args, [Tick("t-1", "w", AT)], "f", bulk=True) == 0
    assert send(args, [Tick("t-1", "w", AT)], "f") == 0  # one command: no bar
    assert shown == [True, False, True, False]
