"""``rating-engine catalog publish`` on a real broker: the next revision published, every
wallet told by an AdoptCatalog keyed by wallet, the same file twice published once, a
stranding change refused with nothing sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml
from confluent_kafka import Producer

from engine import cli
from engine.codec import decode_command
from engine.domain.commands import AdoptCatalog
from engine.domain.routing import SimRoute
from engine.stream.directory import WalletEntry, entry_key, entry_value
from engine.stream.recovery import read_partition
from engine.stream.revisions import read_revisions
from engine.stream.topics import Topics

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"


@pytest.fixture
def topics(fresh_topics: Topics) -> Topics:
    return fresh_topics


def adopted(bootstrap: str, topics: Topics) -> list[tuple[bytes | None, AdoptCatalog]]:
    """Every AdoptCatalog on wallet.commands, with its key."""
    spec = topics.wallet_commands
    found = []
    for partition in range(spec.partitions):
        for message in read_partition(bootstrap, spec.name, partition):
            command = decode_command(message.value() or b"")
            assert isinstance(command, AdoptCatalog)
            found.append((message.key(), command))
    return sorted(found, key=lambda pair: pair[1].command_id)


def test_publish_tells_every_wallet_and_publishes_a_file_once(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish = ["catalog", "publish", "--bootstrap", kafka_bootstrap, "--no-progress"]
    assert cli.main([*publish, str(EXAMPLE)]) == 0
    assert "published as revision 1" in capsys.readouterr().out
    assert cli.main([*publish, str(EXAMPLE)]) == 0
    assert "unchanged: already revision 1" in capsys.readouterr().out

    changed = tmp_path / "prices.yaml"
    changed.write_text(EXAMPLE.read_text().replace("ACME Logistics", "ACME Two", 1))
    assert cli.main([*publish, str(changed)]) == 0
    assert "published as revision 2" in capsys.readouterr().out

    kept = read_revisions(kafka_bootstrap, topics)
    assert [(n, r.name) for n, r in kept.items()] == [(1, "catalog.yaml"), (2, "prices.yaml")]
    told = adopted(kafka_bootstrap, topics)
    wallets = ["acme", "globex", "initech", "umbrella"]
    # The unchanged file told every wallet again (a retry completes a fan-out cut short).
    expected = [f"adopt:{n}:{w}" for n in (1, 1, 2) for w in wallets]
    assert sorted(c.command_id for _, c in told) == sorted(expected)
    assert all(key == c.wallet_id.encode() for key, c in told)
    assert {(c.revision, c.digest) for _, c in told} == {(n, kept[n].digest) for n in (1, 2)}


@pytest.fixture
def published(
    kafka_bootstrap: str, topics: Topics, capsys: pytest.CaptureFixture[str]
) -> list[str]:
    """``catalog publish`` on the broker, but the file; the example catalog already
    published with it as revision 1 (its output read)."""
    publish = ["catalog", "publish", "--bootstrap", kafka_bootstrap, "--no-progress"]
    assert cli.main([*publish, str(EXAMPLE)]) == 0
    capsys.readouterr()
    return publish


class Shrunk(NamedTuple):
    publish: list[str]
    """As ``published``: revision 1 is the example catalog."""
    pool: str
    """The pool the smaller file leaves out."""
    smaller: Path
    """The example catalog without its first pool (no subscription of it names the pool any
    more): a file that loads, but strands the SIMs live in that pool."""


@pytest.fixture
def shrunk(published: list[str], tmp_path: Path) -> Shrunk:
    """The example catalog published as revision 1, and a smaller file."""
    data = yaml.safe_load(EXAMPLE.read_text())
    pool = data["pools"].pop(0)["id"]
    for sub in data["subscriptions"]:
        if sub.get("pool") == pool:
            del sub["pool"]
    smaller = tmp_path / "smaller.yaml"
    smaller.write_text(yaml.safe_dump(data, sort_keys=False))
    return Shrunk(published, pool, smaller)


def test_a_stranding_change_is_refused_and_nothing_is_sent(
    kafka_bootstrap: str, topics: Topics, shrunk: Shrunk, capsys: pytest.CaptureFixture[str]
) -> None:
    publish, pool, smaller = shrunk
    code = cli.main([*publish, str(smaller)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"{smaller} would strand live state; nothing was published" in err
    assert f"pool '{pool}' (wallet " in err and "is removed mid-cycle, but" in err
    assert list(read_revisions(kafka_bootstrap, topics)) == [1]
    assert len(adopted(kafka_bootstrap, topics)) == 4  # revision 1's only


def _directory(bootstrap: str, topics: Topics, *entries: SimRoute | WalletEntry) -> None:
    """Entries on wallet.directory, as wallets' owners write them."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for entry in entries:
        producer.produce(topics.wallet_directory.name, entry_value(entry), entry_key(entry))
    assert producer.flush(30) == 0


def test_the_shared_route_table_is_consulted_and_its_wallets_told(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    moved = SimRoute("89440000000000000777", "globex", ((1_780_000_000, None),), "iot-eu")
    _directory(kafka_bootstrap, topics, moved, WalletEntry("opened", "EUR", True, 1))
    publish = ["catalog", "publish", "--bootstrap", kafka_bootstrap, "--no-progress"]
    assert cli.main([*publish, str(EXAMPLE)]) == 0
    assert "AdoptCatalog sent to 5 of 5 wallets" in capsys.readouterr().out
    assert "adopt:1:opened" in {c.command_id for _, c in adopted(kafka_bootstrap, topics)}

    # A wallet opened by command in EUR, listed by the new file in USD: refused.
    data = yaml.safe_load(EXAMPLE.read_text())
    data["wallets"].append({"id": "opened", "currency": "USD"})
    usd = tmp_path / "usd.yaml"
    usd.write_text(yaml.safe_dump(data, sort_keys=False))
    assert cli.main([*publish, str(usd)]) == 1
    err = capsys.readouterr().err
    assert "wallet 'opened' changes currency from EUR to USD" in err
    # The plan a SIM moved by command is on, removed with the file's own SIMs on it: the
    # moved SIM is named among its dependents.
    data = yaml.safe_load(EXAMPLE.read_text())
    data["plans"] = [p for p in data["plans"] if p["id"] != "iot-eu"]
    data["subscriptions"] = [s for s in data["subscriptions"] if s["plan"] != "iot-eu"]
    fewer = tmp_path / "fewer.yaml"
    fewer.write_text(yaml.safe_dump(data, sort_keys=False))
    assert cli.main([*publish, str(fewer), "--json"]) == 1
    answer = json.loads(capsys.readouterr().out)
    [plan] = [p for p in answer["problems"] if p["kind"] == "plan_removed"]
    assert f"{moved.iccid} (wallet globex)" in plan["dependents"]
    assert list(read_revisions(kafka_bootstrap, topics)) == [1]


def test_a_dry_run_checks_and_sends_nothing(
    kafka_bootstrap: str,
    topics: Topics,
    published: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    changed = tmp_path / "renamed.yaml"
    changed.write_text(EXAMPLE.read_text().replace("ACME Logistics", "ACME Two", 1))
    assert cli.main([*published, str(changed), "--dry-run", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["status"], answer["revision"], answer["wallets"]) == ("dry-run", 2, 4)
    assert list(read_revisions(kafka_bootstrap, topics)) == [1]
    assert len(adopted(kafka_bootstrap, topics)) == 4  # revision 1's only


def test_a_refusal_as_json_names_each_problem_and_its_dependents(
    kafka_bootstrap: str, topics: Topics, shrunk: Shrunk, capsys: pytest.CaptureFixture[str]
) -> None:
    publish, pool, smaller = shrunk
    assert cli.main([*publish, str(smaller), "--json"]) == 1
    answer = json.loads(capsys.readouterr().out)
    assert answer["ok"] is False and answer["status"] == "refused"
    assert [(p["kind"], p["subject"]) for p in answer["problems"]] == [("pool_removed", pool)]
    assert all(p["dependents"] for p in answer["problems"])
    assert list(read_revisions(kafka_bootstrap, topics)) == [1]


def test_a_bad_catalog_is_refused_before_the_broker_is_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("zones: 1\n")
    # No broker answers there: the file is refused before one is asked.
    assert cli.main(["catalog", "publish", "--bootstrap", "127.0.0.1:1", str(bad)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err
