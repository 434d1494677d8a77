"""``rating-engine publish`` and ``rating-engine command``: keys, partitions, counts."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka.partitioner import DefaultPartitioner
from support.topics import read_all

from engine import cli
from engine.codec import decode_command, encode
from engine.domain import TopUp
from engine.stream import producer_id, publisher
from engine.stream.pacing import TokenBucket
from engine.stream.publisher import derived_command_id, iccid_key
from engine.stream.topics import REPO_TOPICS, Topics

# ---- pieces that need no broker ------------------------------------------------------------


def test_iccid_key_reads_only_the_iccid_and_never_fails() -> None:
    assert iccid_key(b'{"cdr_id": "1", "iccid": "8931", "volume": -5, "x": [1, {}]}') == b"8931"
    assert iccid_key(b'{"iccid": "8931", "volume": ') is None  # malformed JSON
    assert iccid_key(b'{"cdr_id": "1"}') is None  # no ICCID
    assert iccid_key(b'{"iccid": 8931}') is None  # not a string
    assert iccid_key(b'{"iccid": ""}') is None
    assert iccid_key(b"[1, 2]") is None
    assert iccid_key(b"\xff\xfe") is None


class _FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_offers_a_steady_rate_without_spinning() -> None:
    clock = _FakeClock()
    bucket = TokenBucket(100, clock=clock)  # 100/s, bursts of 5
    sent_at: list[float] = []
    waits = 0
    for _ in range(1000):
        while (pause := bucket.delay()) > 0:
            waits += 1
            clock.now += pause  # the caller sleeps for the whole pause
        bucket.take()
        sent_at.append(clock.now)
    # 1000 records at 100/s: ~10 s, less the initial burst.
    assert sent_at[-1] == pytest.approx(995 / 100, abs=0.02)
    # No one-second window holds more than the rate plus one burst.
    start = 0
    for end, t in enumerate(sent_at):
        while sent_at[start] <= t - 1.0:
            start += 1
        assert end - start + 1 <= 100 + 5
    # Each wait is one sleep for the whole deficit, not a poll loop.
    assert waits <= 1000


def test_token_bucket_waits_in_sleepable_chunks_at_high_rates() -> None:
    clock = _FakeClock()
    bucket = TokenBucket(50_000, clock=clock)
    pauses: list[float] = []
    for _ in range(20_000):
        while (pause := bucket.delay()) > 0:
            pauses.append(pause)
            clock.now += pause
        bucket.take()
    # The next token is 20 us away, but each wait is long enough to really sleep...
    assert min(pauses) >= TokenBucket.MIN_WAIT
    # ...and the tokens that accrue meanwhile are spent in a burst, so the rate holds.
    assert clock.now == pytest.approx((20_000 - 2_500) / 50_000, rel=0.01)


def test_derived_command_ids_are_stable_and_distinct() -> None:
    one = derived_command_id("top-up", {"wallet": "w1", "amount": "20.00", "currency": "EUR"})
    assert one == derived_command_id(
        "top-up", {"currency": "EUR", "amount": "20.00", "wallet": "w1", "at": None}
    )
    assert one.startswith("cli-top-up-")
    assert one != derived_command_id("top-up", {"wallet": "w1", "amount": "20", "currency": "EUR"})
    assert one != derived_command_id(
        "top-up", {"wallet": "w2", "amount": "20.00", "currency": "EUR"}
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["command"], "give a command"),
        (["command", "--input", "x.jsonl", "tick", "--wallet", "w"], "not both"),
        (["command", "tick", "--wallet", "w", "--at", "2026-09-01T00:00:00"], "needs a UTC offset"),
        (["command", "tick", "--wallet", "w", "--at", "yesterday"], "not an RFC 3339 time"),
        (
            ["command", "top-up", "--wallet", "w", "--amount", "-5", "--currency", "EUR"],
            "must be positive",
        ),
        (
            ["command", "top-up", "--wallet", "w", "--amount", "5", "--currency", "euro"],
            "ISO 4217",
        ),
        (["publish", "--input", "x.jsonl", "--rate", "0"], "--rate must be"),
    ],
)
def test_usage_mistakes_exit_2_before_any_broker_is_asked(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([*argv, "--bootstrap", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# ---- against a real broker -----------------------------------------------------------------


@pytest.fixture
def topics(fresh_topics: Topics) -> Topics:
    return fresh_topics


def _cdr_lines(count: int) -> list[bytes]:
    lines = []
    for i in range(count):
        cdr = {
            "cdr_id": f"c{i}",
            "iccid": f"89310000000000{i % 37:04d}",
            "service": "data",
            "started_at": "2026-09-01T10:00:00+02:00",
            "volume": 1000 + i,
            "mcc": "262",
            "mnc": "01",
        }
        lines.append(encode(cdr))
    return lines


def test_publish_sends_every_line_keyed_by_iccid_on_the_murmur2_partition(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _cdr_lines(496)
    malformed = b'{"cdr_id": "bad-1", "iccid": "8931000000000000000'  # cut off mid-record
    no_iccid = b'{"cdr_id": "bad-2", "service": "data"}'
    invalid = b'{"cdr_id": "bad-3", "iccid": "8931000000000000009", "volume": -1}'
    lines = [*good[:200], malformed, b"", *good[200:400], no_iccid, b"   ", invalid, *good[400:]]
    path = tmp_path / "cdrs.jsonl"
    # CRLF on one line: the line ending is not part of the record.
    path.write_bytes(b"\n".join(lines[:-1]) + b"\r\n" + lines[-1] + b"\n")

    code = cli.main(
        ["publish", "--input", str(path), "--bootstrap", kafka_bootstrap, "--json", "--no-progress"]
    )
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    sent = [line for line in lines if line.strip()]
    assert len(sent) == 499
    assert summary["records"] == summary["delivered"] == 499
    assert (summary["failed"], summary["unkeyed"], summary["blank"]) == (0, 2, 2)

    spec = topics.cdr_raw
    records = read_all(kafka_bootstrap, spec.name, spec.partitions)
    assert sorted(value for _, value, _ in records) == sorted(sent)  # byte for byte, no drops
    every = list(range(spec.partitions))
    for key, value, partition in records:
        if value in (malformed, no_iccid):
            assert key is None
            continue
        assert key == json.loads(value)["iccid"].encode()
        # The partition Faust's (aiokafka's) partitioner picks for that key.
        assert partition == DefaultPartitioner()(key, every, every)
    assert len({partition for _, _, partition in records}) > 1


def test_publish_with_a_rate_and_the_text_summary(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cdrs.jsonl"
    path.write_bytes(b"\n".join(_cdr_lines(40)) + b"\n")
    argv = ["publish", "--input", str(path), "--bootstrap", kafka_bootstrap, "--rate", "400"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert f"-> {topics.cdr_raw.name}: 40 delivered, 0 failed" in out


def test_publish_hands_over_no_record_before_the_producer_has_its_id(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A record handed over earlier waits in librdkafka's queue until the id comes (up to
    # half a second after a new producer starts), stamped with the time it was handed over.
    states: list[str] = []
    send = publisher._Sender.send

    def recording(self: publisher._Sender, *args: Any, **kwargs: Any) -> None:
        states.append(self.producer_id.state)
        send(self, *args, **kwargs)

    monkeypatch.setattr(publisher._Sender, "send", recording)
    path = tmp_path / "cdrs.jsonl"
    path.write_bytes(b"\n".join(_cdr_lines(30)) + b"\n")
    for rate in ([], ["--rate", "300"]):
        argv = ["publish", "--input", str(path), "--bootstrap", kafka_bootstrap, *rate]
        assert cli.main([*argv, "--no-progress"]) == 0
    assert states == ["Assigned"] * 60


def test_publish_without_the_producer_id_in_time_sends_anyway_and_says_so(
    kafka_bootstrap: str,
    topics: Topics,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(producer_id, "PRODUCER_ID_WAIT", 0.0)
    path = tmp_path / "cdrs.jsonl"
    path.write_bytes(b"\n".join(_cdr_lines(20)) + b"\n")
    argv = ["publish", "--input", str(path), "--bootstrap", kafka_bootstrap, "--json"]
    assert cli.main([*argv, "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "no id from the cluster after 0 s; sending anyway" in captured.err
    assert json.loads(captured.out)["delivered"] == 20  # they waited in the queue for it


def test_publish_to_a_missing_topic_is_a_clear_error(
    kafka_bootstrap: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = yaml.safe_load(REPO_TOPICS.read_text())
    data["topics"][0]["name"] = f"absent-{uuid.uuid4().hex[:10]}"
    path = tmp_path / "topics.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("RATING_TOPICS", str(path))
    cdrs = tmp_path / "cdrs.jsonl"
    cdrs.write_bytes(_cdr_lines(1)[0] + b"\n")
    assert cli.main(["publish", "--input", str(cdrs), "--bootstrap", kafka_bootstrap]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "topics apply" in err


def test_command_top_up_lands_one_top_up_keyed_by_wallet(
    kafka_bootstrap: str, topics: Topics, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["command", "--bootstrap", kafka_bootstrap, "top-up", "--wallet", "acme"]
    argv += ["--amount", "20.00", "--currency", "EUR"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("TopUp cli-top-up-") and f"-> {topics.wallet_commands.name}" in out

    spec = topics.wallet_commands
    records = read_all(kafka_bootstrap, spec.name, spec.partitions)
    assert len(records) == 1
    key, value, partition = records[0]
    assert key == b"acme"
    every = list(range(spec.partitions))
    assert partition == DefaultPartitioner()(key, every, every)
    command = decode_command(value)
    assert isinstance(command, TopUp)
    assert (command.wallet_id, command.amount, command.currency) == ("acme", "20.00", "EUR")
    assert command.at.tzinfo is not None

    # A retry of the same call carries the same id, so the wallet applies it once.
    assert cli.main([*argv, "--json"]) == 0
    retry = json.loads(capsys.readouterr().out)
    assert retry["deliveries"][0]["command_id"] == command.command_id


def test_command_file_and_the_other_commands(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["command", "--bootstrap", kafka_bootstrap]
    at = ["--at", "2026-10-01T00:00:00Z"]
    assert cli.main([*base, "redeem-voucher", "--wallet", "w1", "--code", "V-1", *at]) == 0
    assert (
        cli.main([*base, "change-plan", "--wallet", "w1", "--iccid", "8931", "--plan", "p2"]) == 0
    )
    assert cli.main([*base, "tick", "--wallet", "w2", "--id", "tick-1", *at]) == 0
    capsys.readouterr()

    commands = tmp_path / "commands.jsonl"
    commands.write_text(
        '{"type": "Tick", "command_id": "t-9", "wallet_id": "w3", "at": "2026-10-02T00:00:00Z"}\n'
        "\n"
        '{"type": "TopUp", "command_id": "u-9", "wallet_id": "w3", "at": "2026-10-02T00:00:00Z",'
        ' "amount": "5", "currency": "EUR"}\n'
    )
    assert cli.main([*base, "--input", str(commands)]) == 0
    assert "2 delivered, 0 failed" in capsys.readouterr().out

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "Tick", "command_id": "t-10"}\n')
    assert cli.main([*base, "--input", str(bad)]) == 1
    assert "nothing was sent" in capsys.readouterr().err

    spec = topics.wallet_commands
    records = read_all(kafka_bootstrap, spec.name, spec.partitions)
    found = {
        c.command_id: (type(c).__name__, key)
        for key, value, _ in records
        for c in [decode_command(value)]
    }
    assert len(records) == len(found) == 5
    assert found["tick-1"] == ("Tick", b"w2")
    assert found["t-9"] == ("Tick", b"w3")
    assert found["u-9"] == ("TopUp", b"w3")
    assert sorted(v for k, v in found.items() if k.startswith("cli-")) == [
        ("ChangePlan", b"w1"),
        ("RedeemVoucher", b"w1"),
    ]
