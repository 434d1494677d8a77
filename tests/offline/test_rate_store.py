"""`rating-engine rate --store --clickhouse`: the offline path fills the same event store and
projections as the stream, and running it again adds nothing."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from engine.cli import main
from engine.projections.clickhouse import connect
from engine.store import open_store

REPO = Path(__file__).resolve().parents[2]
CATALOG = str(REPO / "examples" / "catalog.yaml")


def test_rate_writes_the_store_and_the_projections(
    tmp_path: Path, chdb_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cdrs, cmds = tmp_path / "cdrs.jsonl", tmp_path / "cmds.jsonl"
    args = ["generate", "--catalog", CATALOG, "--sims", "300", "--cdrs", "3000", "--seed", "9"]
    assert main([*args, "--out", str(cdrs), "--commands-out", str(cmds)]) == 0
    store_url = f"sqlite:///{tmp_path / 'events.db'}"
    clickhouse = f"chdb://{chdb_path}?database=rate_cli"
    rate = ["rate", "--catalog", CATALOG, "--input", str(cdrs), "--commands", str(cmds)]
    rate += ["--events-out", str(tmp_path / "events.jsonl"), "--json", "--no-progress"]
    capsys.readouterr()
    assert main([*rate, "--store", store_url, "--clickhouse", clickhouse]) == 0
    summary = msgspec.json.decode(capsys.readouterr().out)

    events = (tmp_path / "events.jsonl").read_bytes().splitlines()
    store = open_store(store_url)
    stored = [e.payload for batch in store.read_all() for e in batch]
    assert stored == events  # the same events, in the same order, byte for byte
    assert store.verify() == []
    assert store.stats().inputs > 0

    client = connect(clickhouse)
    balances = dict(client.query("SELECT wallet, balance FROM wallet_balances").result_rows)
    assert balances == {w["wallet_id"]: w["balance"] for w in summary["wallets"]}

    # Again: the store and the projections already hold all of it.
    assert main([*rate, "--store", store_url, "--clickhouse", clickhouse]) == 0
    assert store.position() == len(events)
    again = dict(client.query("SELECT wallet, balance FROM wallet_balances").result_rows)
    assert again == balances
    store.close()
    client.close()


def test_clickhouse_without_a_store_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cdrs = tmp_path / "cdrs.jsonl"
    cdrs.write_text("")
    code = main(["rate", "--catalog", CATALOG, "--input", str(cdrs), "--clickhouse", "chdb:///x"])
    assert code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "--clickhouse needs --store" in err
