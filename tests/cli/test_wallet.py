"""``rating-engine wallet``: the commands of a wallet's life, the catalog revision an
``OpenWallet`` carries, their ids, the checks before sending, and what lands on a broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner
from support.topics import read_all

from engine import cli
from engine.cli import build_parser, wallet
from engine.cli.args import UsageError
from engine.cli.wallet import command_from_args
from engine.codec import decode_command
from engine.domain import Command
from engine.domain.commands import CloseWallet, OpenWallet, ResumeWallet, SuspendWallet
from engine.stream.revisions import publish_revision, revision_of
from engine.stream.topics import Topics

AT = ["--at", "2026-10-01T00:00:00Z"]
OPEN = ["open", "--wallet", "w9", "--currency", "EUR"]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"


def _command(*argv: str) -> Command:
    return command_from_args(build_parser().parse_args(["wallet", *argv]))


@pytest.fixture
def revision(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The latest published revision, as the CLI would read it (no broker)."""
    latest = [0]
    monkeypatch.setattr(wallet, "latest_revision", lambda bootstrap, topics: latest[0])
    return latest


def test_open_carries_its_terms_and_the_latest_revision(revision: list[int]) -> None:
    revision[0] = 3
    command = _command(
        *OPEN, "--name", "Nine", "--overdraft-limit", "50.00", "--suspend-at", "-50.00",
        "--resume-at", "10.00", "--threshold", "100", "--threshold", "20",
        "--cycle-anchor-day", "15", *AT,
    )  # fmt: skip
    assert isinstance(command, OpenWallet)
    assert (command.wallet_id, command.currency, command.name) == ("w9", "EUR", "Nine")
    assert (command.overdraft_limit, command.suspend_at, command.resume_at) == (
        "50.00",
        "-50.00",
        "10.00",
    )
    assert command.thresholds == ("100", "20") and command.cycle_anchor_day == 15
    assert command.revision == 3 and command.command_id.startswith("cli-open-wallet-")


def test_the_same_open_is_the_same_command_until_the_catalog_moves(revision: list[int]) -> None:
    first, again = _command(*OPEN), _command(*OPEN)
    assert first.command_id == again.command_id
    assert _command(*OPEN, "--name", "x").command_id != first.command_id
    revision[0] = 1
    assert _command(*OPEN).command_id != first.command_id


def test_close_suspend_resume_with_their_reason(revision: list[int]) -> None:
    made = {
        verb: _command(verb, "--wallet", "w9", "--reason", "audit", *AT)
        for verb in ("close", "suspend", "resume")
    }
    assert isinstance(made["close"], CloseWallet)
    assert isinstance(made["suspend"], SuspendWallet)
    assert isinstance(made["resume"], ResumeWallet)
    assert len({c.command_id for c in made.values()}) == 3
    assert made["suspend"].reason == "audit"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["open", "--wallet", "w", "--currency", "euro"], "ISO 4217"),
        ([*OPEN, "--overdraft-limit", "-1"], "cannot be negative"),
        ([*OPEN, "--threshold", "lots"], "not a decimal number: 'lots'"),
        ([*OPEN, "--cycle-anchor-day", "31"], "cycle_anchor_day: must be 1..28"),
        (["suspend", "--wallet", "w", "--reason", " "], "--reason must say why"),
        (["close", "--wallet", "w", "--reason", "x", "--at", "2999-01-01T00:00:00Z"], "range"),
    ],
)
def test_what_any_wallet_would_refuse_is_refused_before_the_broker_is_asked(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UsageError, match=message):
        _command(*argv)  # no revision fixture: the broker is never asked
    assert cli.main(["wallet", *argv, "--bootstrap", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert message.split()[0] in err and "Traceback" not in err


def test_a_dry_run_of_open_prints_the_command(
    revision: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    revision[0] = 2
    assert cli.main(["wallet", *OPEN, *AT, "--dry-run", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["count"] == 1 and shown["commands"][0]["revision"] == 2


def test_open_lands_keyed_by_wallet_with_the_published_revision(
    kafka_bootstrap: str, fresh_topics: Topics, capsys: pytest.CaptureFixture[str]
) -> None:
    assert publish_revision(kafka_bootstrap, fresh_topics, revision_of(EXAMPLE, 4))
    flags = ["--bootstrap", kafka_bootstrap, *AT]
    assert cli.main(["wallet", *OPEN, *flags]) == 0
    assert capsys.readouterr().out.startswith("OpenWallet cli-open-wallet-")
    assert cli.main(["wallet", "suspend", "--wallet", "w9", "--reason", "fraud", *flags]) == 0
    assert cli.main(["wallet", *OPEN, *flags, "--json"]) == 0  # a retry: the same id
    capsys.readouterr()

    spec = fresh_topics.wallet_commands
    records = read_all(kafka_bootstrap, spec.name, spec.partitions)
    every = list(range(spec.partitions))
    assert {(key, partition) for key, _, partition in records} == {
        (b"w9", DefaultPartitioner()(b"w9", every, every))
    }
    landed = [decode_command(value) for _, value, _ in records]
    opened = [c for c in landed if isinstance(c, OpenWallet)]
    assert len(opened) == 2 and opened[0].command_id == opened[1].command_id
    assert opened[0].revision == 4
    assert any(isinstance(c, SuspendWallet) and c.reason == "fraud" for c in landed)
