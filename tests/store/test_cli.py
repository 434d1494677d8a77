"""`rating-engine store verify`, `store stats` and `store snapshot` as an operator runs them."""

from __future__ import annotations

from contextlib import closing

import msgspec
import pytest

from engine.cli import main
from engine.store import open_store

from .helpers import Rated, tamper


def _filled(url: str, rated: Rated, count: int = 600) -> None:
    with closing(open_store(url)) as store:
        store.append(rated.events[:count], rated.inputs[:7])


def test_verify_an_intact_store_exits_zero(
    store_url: str, rated: Rated, capsys: pytest.CaptureFixture[str]
) -> None:
    _filled(store_url, rated)
    streams = len({e.wallet_id for e in rated.events[:600]})
    assert main(["store", "verify", "--store", store_url]) == 0
    assert capsys.readouterr().out == f"600 events in {streams} streams, intact\n"
    assert main(["store", "verify", "--store", store_url, "--json"]) == 0
    report = msgspec.json.decode(capsys.readouterr().out)
    assert report == {"ok": True, "events": 600, "streams": streams, "problems": []}


def test_verify_lists_each_problem_and_exits_non_zero(
    store_url: str, rated: Rated, capsys: pytest.CaptureFixture[str]
) -> None:
    _filled(store_url, rated)
    tamper(
        store_url,
        [
            ("UPDATE events SET payload = payload || ? WHERE position = ?", (b" ", 10)),
            ("DELETE FROM events WHERE position = ?", (20,)),
        ],
    )
    assert main(["store", "verify", "--store", store_url]) == 1
    out = capsys.readouterr().out
    assert out.startswith("2 problems in 599 events")
    assert "altered" in out and "missing" in out
    assert main(["store", "verify", "--store", store_url, "--json"]) == 1
    report = msgspec.json.decode(capsys.readouterr().out)
    assert report["ok"] is False
    assert sorted(p["kind"] for p in report["problems"]) == ["altered", "missing"]


def test_stats(store_url: str, rated: Rated, capsys: pytest.CaptureFixture[str]) -> None:
    _filled(store_url, rated)
    assert main(["store", "stats", "--store", store_url, "--json"]) == 0
    stats = msgspec.json.decode(capsys.readouterr().out)
    assert stats == {
        "events": 600,
        "streams": len({e.wallet_id for e in rated.events[:600]}),
        "inputs": 7,
        "position": 600,
    }
    assert main(["store", "stats", "--store", store_url]) == 0
    assert "position" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root@db/x", "unknown event store URL 'mysql://root@db/x'"),
        ("postgresql://me@127.0.0.1:1/x", "cannot reach the event store postgresql://me@"),
        ("sqlite:////no/such/dir/events.db", "cannot open the event store"),
    ],
)
def test_a_bad_store_url_is_a_message_not_a_traceback(
    url: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["store", "verify", "--store", url]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "secret" not in err
    assert "Traceback" not in err


def test_store_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["store"])
    assert exit_.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_store_snapshot_writes_each_wallet_with_new_events_once(
    store_url: str, rated: Rated, capsys: pytest.CaptureFixture[str]
) -> None:
    _filled(store_url, rated)
    streams = len({e.wallet_id for e in rated.events[:600]})
    assert main(["store", "snapshot", "--store", store_url]) == 0
    assert capsys.readouterr().out == (
        f"{streams} wallet snapshots at position 600 (600 events folded)\n"
    )
    assert main(["store", "snapshot", "--store", store_url, "--json"]) == 0
    taken = msgspec.json.decode(capsys.readouterr().out)
    assert (taken["position"], taken["written"], taken["folded"]) == (600, 0, 0)
