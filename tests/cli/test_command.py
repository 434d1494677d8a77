"""``rating-engine command``: the command the arguments describe, its id, and what is refused
before anything is sent (by the wallet's own rules)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.cli import build_parser
from engine.cli.args import UsageError
from engine.cli.command import command_from_args, commands_file
from engine.domain import Tick, TopUp, WriteOffDebt
from engine.offline.inputs import InputError

AT = ["--at", "2026-10-01T00:00:00Z"]


def _command(*argv: str) -> object:
    return command_from_args(build_parser().parse_args(["command", *argv]))


def test_a_top_up_as_described() -> None:
    command = _command("top-up", "--wallet", "w1", "--amount", "20.00", "--currency", "EUR", *AT)
    assert isinstance(command, TopUp)
    assert (command.wallet_id, command.amount, command.currency) == ("w1", "20.00", "EUR")
    assert command.at == datetime(2026, 10, 1, tzinfo=UTC)
    assert command.command_id.startswith("cli-top-up-")


def test_the_same_call_is_the_same_command_without_at() -> None:
    """A retry after a timeout must be applied once: the clock does not enter the id."""
    argv = ("top-up", "--wallet", "w1", "--amount", "5", "--currency", "EUR")
    first, again = _command(*argv), _command(*argv)
    assert isinstance(first, TopUp) and isinstance(again, TopUp)
    assert first.command_id == again.command_id
    other = _command("top-up", "--wallet", "w1", "--amount", "6", "--currency", "EUR")
    assert isinstance(other, TopUp) and other.command_id != first.command_id


def test_ticks_at_different_moments_are_different_commands() -> None:
    one = _command("tick", "--wallet", "w1", "--at", "2026-10-01T00:00:00Z")
    two = _command("tick", "--wallet", "w1", "--at", "2026-10-02T00:00:00Z")
    assert isinstance(one, Tick) and isinstance(two, Tick)
    assert one.command_id != two.command_id
    named = _command("tick", "--wallet", "w1", "--id", "tick-7", *AT)
    assert isinstance(named, Tick) and named.command_id == "tick-7"


def test_a_write_off_without_amount_forgives_all_the_debt() -> None:
    command = _command("write-off", "--wallet", "w1", "--reason", "goodwill", *AT)
    assert isinstance(command, WriteOffDebt) and command.amount is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["top-up", "--amount", "-5", "--currency", "EUR"], "invalid_amount: amount -5 is not"),
        (["top-up", "--amount", "0", "--currency", "EUR"], "must be positive"),
        (["top-up", "--amount", "ten", "--currency", "EUR"], "--amount ten: the wallet would"),
        (["top-up", "--amount", "1.0000001", "--currency", "EUR"], "invalid_amount"),
        (["top-up", "--amount", "5", "--currency", "eur"], "ISO 4217"),
        (["write-off", "--reason", "x", "--amount", "-1"], "invalid_amount"),
        (["write-off", "--reason", "  "], "--reason must say why"),
        (["tick", "--at", "2999-01-01T00:00:00Z"], "outside the accepted range"),
        (["tick", "--id", "a\nb", *AT], "not a valid command"),
    ],
)
def test_what_any_wallet_would_refuse_is_refused_here(argv: list[str], message: str) -> None:
    action, *rest = argv
    with pytest.raises(UsageError, match=message):
        _command(action, "--wallet", "w1", *rest)


def test_a_commands_file_with_any_bad_line_sends_nothing(tmp_path: Path) -> None:
    good = '{"type": "Tick", "command_id": "t-1", "wallet_id": "w", "at": "2026-10-02T00:00:00Z"}'
    late = '{"type": "Tick", "command_id": "t-2", "wallet_id": "w", "at": "2999-01-01T00:00:00Z"}'
    path = tmp_path / "commands.jsonl"
    path.write_text(good + "\n")
    assert [c.command_id for c in commands_file(path)] == ["t-1"]
    path.write_text("\n".join([good, late, '{"type": "Tick"}']) + "\n")
    with pytest.raises(InputError) as refused:
        commands_file(path)
    lines = str(refused.value).splitlines()
    assert "command t-2" in lines[0] and "outside the accepted range" in lines[0]
    assert len(lines) == 3 and lines[-1] == "nothing was sent"
