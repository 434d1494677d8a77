"""``rating-engine sim``: the commands each verb builds, one SIM, a range or a file, their ids,
what is refused before sending, the dry run, and what lands on a real broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner
from support.topics import read_all

from engine import cli
from engine.cli import build_parser
from engine.cli.args import UsageError
from engine.cli.command import command_from_args
from engine.cli.sim import commands_from_args
from engine.codec import decode_command
from engine.domain import AttachSim, ChangePlan, Command, DetachSim
from engine.offline.inputs import InputError
from engine.stream.topics import Topics

AT = ["--at", "2026-10-01T00:00:00Z"]


def _commands(*argv: str) -> list[Command]:
    return commands_from_args(build_parser().parse_args(["sim", *argv]))


def test_attach_one_sim_as_described() -> None:
    [command] = _commands(
        "attach", "--iccid", "8931", "--wallet", "acme", "--plan", "iot-eu", "--pool", "p1",
        "--addon", "sms", "--addon", "voice", *AT,
    )  # fmt: skip
    assert isinstance(command, AttachSim)
    assert (command.wallet_id, command.iccid, command.plan, command.pool) == (
        "acme",
        "8931",
        "iot-eu",
        "p1",
    )
    assert command.addons == ("sms", "voice")
    assert command.at == datetime(2026, 10, 1, tzinfo=UTC)
    assert command.command_id.startswith("cli-attach-sim-")


def test_a_range_is_one_command_per_sim_each_with_its_own_stable_id() -> None:
    argv = ("attach", "--range", "8931000-8931004", "--wallet", "acme", "--plan", "iot-eu")
    first, again = _commands(*argv), _commands(*argv)  # no --at: the clock is not in the id
    assert [c.iccid for c in first if isinstance(c, AttachSim)] == [f"893100{i}" for i in range(5)]
    ids = [c.command_id for c in first]
    assert len(set(ids)) == 5 and ids == [c.command_id for c in again]
    other_plan = _commands(
        "attach", "--range", "8931000-8931004", "--wallet", "acme", "--plan", "x"
    )
    assert not set(ids) & {c.command_id for c in other_plan}


def test_a_move_is_a_detach_then_an_attach_at_the_same_instant() -> None:
    detach, attach = _commands(
        "move", "--iccid", "8931", "--from", "acme", "--to", "globex", "--plan", "iot-eu", *AT
    )
    assert isinstance(detach, DetachSim) and isinstance(attach, AttachSim)
    assert (detach.wallet_id, attach.wallet_id) == ("acme", "globex")
    assert detach.at == attach.at and detach.iccid == attach.iccid == "8931"
    assert detach.command_id != attach.command_id
    named = _commands(
        "move", "--iccid", "8931", "--from", "a", "--to", "b", "--plan", "p", "--id", "m-1"
    )
    assert [c.command_id for c in named] == ["m-1-detach", "m-1-attach"]


def test_change_plan_is_the_same_command_as_commands_change_plan() -> None:
    """Two verbs ask the same thing: the same id, so a retry through either is applied once."""
    [ours] = _commands("change-plan", "--iccid", "8931", "--wallet", "w1", "--plan", "p2")
    theirs = command_from_args(
        build_parser().parse_args(
            ["command", "change-plan", "--wallet", "w1", "--iccid", "8931", "--plan", "p2"]
        )
    )
    assert isinstance(ours, ChangePlan) and ours.command_id == theirs.command_id


def test_detach_from_a_file_with_rows_of_their_own_instant(tmp_path: Path) -> None:
    path = tmp_path / "sims.csv"
    path.write_text("iccid,at\n8931,2026-10-02T00:00:00Z\n8932,\n")
    one, two = _commands("detach", "--input", str(path), "--wallet", "acme", *AT)
    assert isinstance(one, DetachSim) and isinstance(two, DetachSim)
    assert one.at == datetime(2026, 10, 2, tzinfo=UTC) and two.at == datetime(
        2026, 10, 1, tzinfo=UTC
    )
    assert one.wallet_id == two.wallet_id == "acme"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["attach", "--iccid", "1", "--plan", "p"], "sim attach needs --wallet"),
        (["move", "--iccid", "1", "--from", "a", "--plan", "p"], "needs --to"),
        (["attach", "--range", "5-1", "--wallet", "w", "--plan", "p"], "1 comes before 5"),
        (["attach", "--range", "1-5", "--wallet", "w", "--plan", "p", "--id", "x"], "--id names"),
        (["attach", "--iccid", "1", "--wallet", "w", "--plan", "p", "--at", "now"], "RFC 3339"),
        (["attach", "--iccid", "a\tb", "--wallet", "w", "--plan", "p"], "not a valid command"),
        (["detach", "--iccid", "1", "--wallet", "x" * 300], "not a valid command"),
    ],
)
def test_what_any_wallet_would_refuse_is_refused_here(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        _commands(*argv)


def test_a_file_names_every_bad_row_and_nothing_is_built(tmp_path: Path) -> None:
    path = tmp_path / "sims.jsonl"
    path.write_text(
        '{"iccid": "1", "wallet": "w", "plan": "p"}\n'
        '{"iccid": "2", "plan": "p"}\n'
        '{"iccid": "1", "wallet": "v", "plan": "p"}\n'
        '{"iccid": "3", "wallet": "w", "plan": "p", "at": "soon"}\n'
    )
    with pytest.raises(InputError) as refused:
        _commands("attach", "--input", str(path))
    assert str(refused.value).splitlines() == [
        f"{path}:2: missing wallet",
        f"{path}:3: ICCID 1 is also on {path}:1",
        f"{path}:4: --at 'soon' is not an RFC 3339 time",
        "nothing was sent",
    ]


def test_usage_and_file_mistakes_exit_non_zero_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["sim", "attach", "--bootstrap", "127.0.0.1:1"]
    assert cli.main([*base, "--range", "1-22", "--wallet", "w", "--plan", "p"]) == 2
    assert cli.main([*base, "--input", str(tmp_path / "none.csv")]) == 1
    err = capsys.readouterr().err
    assert "1 has 1 digits and 22 2" in err and "No such file" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as usage:  # argparse: one source of SIMs, exactly
        cli.main([*base, "--iccid", "1", "--range", "1-2", "--wallet", "w", "--plan", "p"])
    assert usage.value.code == 2


def test_a_dry_run_prints_the_commands_and_sends_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["sim", "attach", "--range", "11-13", "--wallet", "w", "--plan", "p", *AT]
    assert cli.main([*argv, "--dry-run", "--bootstrap", "127.0.0.1:1"]) == 0
    out, err = capsys.readouterr()
    sent = [decode_command(line.encode()) for line in out.splitlines()]
    assert [c.iccid for c in sent if isinstance(c, AttachSim)] == ["11", "12", "13"]
    assert "dry run: 3 AttachSim for 1 wallet(s); nothing was sent" in err
    assert cli.main([*argv, "--dry-run", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["dry_run"] is True and shown["count"] == 3
    assert shown["commands"][0]["command_id"] == sent[0].command_id


# ---- against a real broker -----------------------------------------------------------------


def test_sims_land_on_wallet_commands_keyed_by_wallet_and_a_retry_repeats_their_ids(
    kafka_bootstrap: str,
    fresh_topics: Topics,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["sim"]
    flags = ["--bootstrap", kafka_bootstrap, "--no-progress", *AT]
    span = ["attach", "--range", "8931000-8931009", "--wallet", "acme", "--plan", "iot-eu"]
    assert cli.main([*base, *span, *flags, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["delivered"] == 10
    path = tmp_path / "moves.csv"
    path.write_text("iccid,from,to\n8931000,acme,globex\n8931001,acme,initech\n")
    move = ["move", "--input", str(path), "--plan", "iot-eu"]
    assert cli.main([*base, *move, *flags]) == 0
    assert "4 delivered, 0 failed" in capsys.readouterr().out
    assert cli.main([*base, *span, *flags]) == 0  # the same call again: the same ids
    capsys.readouterr()

    spec = fresh_topics.wallet_commands
    records = read_all(kafka_bootstrap, spec.name, spec.partitions)
    every = list(range(spec.partitions))
    landed = [(decode_command(value), key, partition) for key, value, partition in records]
    for command, key, partition in landed:
        assert key == command.wallet_id.encode()
        assert partition == DefaultPartitioner()(key, every, every)
    ids = [c.command_id for c, _, _ in landed]
    assert len(ids) == 24 and len(set(ids)) == 14  # ten attached twice, with the same ids
    by_wallet = {
        (type(c).__name__, c.wallet_id)
        for c, _, _ in landed
        if isinstance(c, AttachSim | DetachSim) and c.iccid == "8931001"
    }
    assert by_wallet == {("AttachSim", "acme"), ("DetachSim", "acme"), ("AttachSim", "initech")}


def test_the_same_sim_asked_by_iccid_range_or_file_is_the_same_command(tmp_path: Path) -> None:
    path = tmp_path / "sims.csv"
    path.write_text("iccid,plan\n8931,iot-eu\n")
    flags = ("--wallet", "acme", *AT)
    ids = {
        c.command_id
        for source in (
            ["--iccid", "8931", "--plan", "iot-eu"],
            ["--range", "8931-8931", "--plan", "iot-eu"],
            ["--input", str(path)],
        )
        for c in _commands("attach", *source, *flags)
    }
    assert len(ids) == 1
