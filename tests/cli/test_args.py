"""The flags several commands share: one instant parser, progress, Kafka servers."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest

from engine.cli.args import UsageError, add_bootstrap, add_progress, instant, progress
from engine.domain.limits import DEFAULT_LIMITS


def test_an_absent_flag_is_none() -> None:
    assert instant("--at", None) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-09-01T00:00:00Z", datetime(2026, 9, 1, tzinfo=UTC)),
        ("2026-09-01T02:00:00+02:00", datetime(2026, 9, 1, tzinfo=UTC)),
        ("2026-09-01T00:00:00.5-01:00", datetime(2026, 9, 1, 1, 0, 0, 500_000, tzinfo=UTC)),
    ],
)
def test_an_instant_with_an_offset_is_read_as_written(text: str, expected: datetime) -> None:
    at = instant("--from", text)
    assert at == expected and at is not None and at.tzinfo is not None


def test_the_offset_given_is_kept() -> None:
    at = instant("--at", "2026-09-01T02:00:00+02:00")
    assert at is not None and at.utcoffset() == timedelta(hours=2)
    assert at.tzinfo == timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("flag", "named", "text", "message"),
    [
        ("--at", "RFC 3339", "yesterday", "--at 'yesterday' is not an RFC 3339 time"),
        ("--from", "ISO 8601", "2026-13-01T00:00:00Z", "is not an ISO 8601 time"),
        ("--to", "ISO 8601", "2026-10-01T00:00:00", "--to '2026-10-01T00:00:00' needs a UTC"),
        ("--at", "RFC 3339", "", "is not an RFC 3339 time"),
    ],
)
def test_what_is_not_an_instant_is_a_usage_error(
    flag: str, named: str, text: str, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        instant(flag, text, named=named)


def test_limits_refuse_what_a_wallet_would_reject_as_invalid_time() -> None:
    far = "2999-01-01T00:00:00Z"
    assert instant("--from", far) == datetime(2999, 1, 1, tzinfo=UTC)  # a window may be wide
    with pytest.raises(UsageError, match=r"--at: .* is outside the accepted range"):
        instant("--at", far, limits=DEFAULT_LIMITS)
    assert instant("--at", "2026-09-01T00:00:00Z", limits=DEFAULT_LIMITS) is not None


def _parsed(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_progress(parser)
    return parser.parse_args(argv)


def test_progress_is_asked_for_or_follows_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    assert progress(_parsed(["--progress"])) is True
    assert progress(_parsed(["--no-progress"])) is False
    for tty in (True, False):
        monkeypatch.setattr(sys.stderr, "isatty", lambda tty=tty: tty)
        assert progress(_parsed([])) is tty


def test_a_subcommand_keeps_the_servers_given_before_it() -> None:
    parser = argparse.ArgumentParser()
    add_bootstrap(parser)
    sub = parser.add_subparsers(dest="action").add_parser("tick")
    add_bootstrap(sub, keep_earlier=True)
    assert parser.parse_args(["--bootstrap", "a:1", "tick"]).bootstrap == "a:1"
    assert parser.parse_args(["tick", "--bootstrap", "b:2"]).bootstrap == "b:2"
    assert parser.parse_args(["tick"]).bootstrap is None
