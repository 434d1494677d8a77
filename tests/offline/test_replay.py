"""Replay end to end: rate generated CDRs into a SQLite store with the example catalog, replay
with a changed catalog, and compare with a fresh offline rate under the changed catalog.

The changed catalog raises two prices of ``iot-eu`` v1 (SMS in EU, data in APAC, which
reaches ACME through split billing) and moves revenue between providers in ``iot-global``.
Replay cannot re-enact control flow: the adjustments move money at replay time, so a wallet
whose suspensions, expiries or uncollected usage would have fallen differently under the new
prices would not match a fresh rate. The generated data is chosen so they do not: ACME,
Globex and Umbrella stay far from their limits (Umbrella's expiring promotion is on
``iot-global``, whose amounts do not change), and Initech sits at its overdraft limit from
early on in both runs, so it is suspended in both and owes what it used either way.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from support.replay import EXAMPLE, Rated, rated_store

from engine.catalog import load_catalog
from engine.cli import main
from engine.codec import decode_event
from engine.domain import AdjustRating, Event, fold, initial_state
from engine.domain.events import Charged, RatingAdjusted, UsageRated
from engine.domain.ids import input_key
from engine.offline.replay import ReplayError, ReplayReport, replay
from engine.offline.run import rate_all
from engine.offline.summary import Summary
from engine.store import EventStore, open_store


@pytest.fixture(scope="module")
def rated(tmp_path_factory: pytest.TempPathFactory) -> Rated:
    return rated_store(tmp_path_factory.mktemp("replay"), 400, 8000, seed=11)


@pytest.fixture(scope="module")
def fresh(rated: Rated) -> Summary:
    """The same CDRs and commands rated afresh under the changed catalog."""
    return rate_all(rated.new_catalog, rated.cdrs, rated.commands)


@pytest.fixture
def store(rated: Rated, tmp_path: Path) -> Iterator[EventStore]:
    """A private copy of the rated store."""
    path = tmp_path / "events.db"
    shutil.copy(rated.store, path)
    s = open_store(f"sqlite:///{path}")
    yield s
    s.close()


def events_of(store: EventStore, wallet_id: str) -> list[Event]:
    return [decode_event(r.payload) for r in store.read_stream(wallet_id)]


def balances(store: EventStore) -> dict[str, tuple[int, int]]:
    out = {}
    for w in store.wallets():
        state = fold(initial_state(w), events_of(store, w))
        out[w] = (state.balance, state.uncollected)
    return out


def revenue(store: EventStore) -> dict[str, int]:
    out: Counter[str] = Counter()
    for w in store.wallets():
        for e in events_of(store, w):
            if isinstance(e, UsageRated | Charged | RatingAdjusted):
                for line in e.splits:
                    out[line.provider] += line.amount
    return dict(out)


def adjustments(store: EventStore) -> list[RatingAdjusted]:
    return [
        e for w in store.wallets() for e in events_of(store, w) if isinstance(e, RatingAdjusted)
    ]


def impact(report: ReplayReport) -> tuple[object, ...]:
    return (
        report.wallets,
        report.providers,
        report.rerated,
        report.changed,
        report.amount,
        report.commands,
    )


def test_after_a_replay_the_store_agrees_with_a_fresh_rate_under_the_new_catalog(
    rated: Rated, fresh: Summary, store: EventStore
) -> None:
    report = replay(store, rated.new_catalog)
    assert report.changed > 1000 and report.rejected == 0
    # one command per changed CDR and paying wallet; thresholds may add events
    assert report.appended >= report.commands >= report.changed
    expected = {w.wallet_id: (w.balance, w.uncollected) for w in fresh.wallets}
    assert balances(store) == expected
    assert revenue(store) == {p: a for p, a in fresh.revenue.items() if a}
    # split billing: Initech's sponsored usage is adjusted in ACME, which pays for it
    routed = [a for a in adjustments(store) if a.source_wallet is not None]
    assert routed and {(a.wallet_id, a.source_wallet) for a in routed} == {("acme", "initech")}
    assert store.verify() == []
    by_wallet = {w.wallet_id: w for w in report.wallets}
    assert by_wallet["globex"].amount == 0 < by_wallet["globex"].changed  # a split moved only
    assert by_wallet["acme"].paid > by_wallet["acme"].amount  # ACME also pays for Initech
    assert report.amount == sum(w.paid for w in report.wallets)
    assert report.amount == sum(p.amount for p in report.providers)


def test_replaying_again_appends_nothing(rated: Rated, store: EventStore) -> None:
    first = replay(store, rated.new_catalog)
    position = store.position()
    again = replay(store, rated.new_catalog)
    assert (again.changed, again.commands, again.appended) == (0, 0, 0)
    assert again.rerated == first.rerated
    assert store.position() == position


def test_a_dry_run_appends_nothing_and_reports_the_same_impact(
    rated: Rated, store: EventStore
) -> None:
    position = store.position()
    dry = replay(store, rated.new_catalog, dry_run=True)
    assert (dry.dry_run, dry.appended, store.position()) == (True, 0, position)
    real = replay(store, rated.new_catalog)
    assert impact(dry) == impact(real)
    assert real.appended > 0


def test_a_concurrent_replay_of_the_same_history_is_recognised_by_id(
    rated: Rated, store: EventStore, tmp_path: Path
) -> None:
    # a second replay that read the same history wrote to another copy of the store ...
    other_path = tmp_path / "other.db"
    shutil.copy(rated.store, other_path)
    other = open_store(f"sqlite:///{other_path}")
    start = other.position()
    replay(other, rated.new_catalog)
    written = [decode_event(r.payload) for rows in other.read_all(after=start) for r in rows]
    commands = [
        (s.wallet_id, s.item)
        for w in other.wallets()
        for s in other.read_inputs(w)
        if isinstance(s.item, AdjustRating)
    ]
    other.close()
    # ... and its events and commands arrive after this one's: nothing is added twice
    replay(store, rated.new_catalog)
    position = store.position()
    assert store.append(written, commands) == 0
    assert store.position() == position
    assert store.verify() == []


def test_only_the_wallet_asked_for_is_re_rated(
    rated: Rated, fresh: Summary, store: EventStore
) -> None:
    report = replay(store, rated.new_catalog, wallet="initech")
    assert {w.wallet_id for w in report.wallets} == {"initech", "acme"}
    rated_in = {w.wallet_id: w.rerated for w in report.wallets}
    assert rated_in["acme"] == 0 < rated_in["initech"]  # ACME only pays
    assert {a.source_wallet or a.wallet_id for a in adjustments(store)} == {"initech"}
    # the rest is adjusted by a later replay of everything; Initech has nothing more
    rest = replay(store, rated.new_catalog)
    assert {w.wallet_id: w.changed for w in rest.wallets}.get("initech", 0) == 0
    expected = {w.wallet_id: (w.balance, w.uncollected) for w in fresh.wallets}
    assert balances(store) == expected


def test_only_cdrs_started_in_the_window_are_adjusted(rated: Rated, store: EventStore) -> None:
    start, end = datetime(2026, 9, 10, tzinfo=UTC), datetime(2026, 9, 20, tzinfo=UTC)
    report = replay(store, rated.new_catalog, start=start, end=end)
    assert report.changed > 0
    started = {
        input_key(e.id): e.at
        for w in store.wallets()
        for e in events_of(store, w)
        if isinstance(e, UsageRated)
    }
    adjusted = adjustments(store)
    assert len(adjusted) == report.commands
    for a in adjusted:
        cdr_key = input_key(a.id).removeprefix("cmd:adj:").rpartition(":")[0]
        assert start <= started[cdr_key] < end
    whole = replay(store, rated.new_catalog, dry_run=True)
    assert whole.changed > 0  # what lies outside the window is still to adjust


def test_the_same_catalog_adjusts_nothing(store: EventStore) -> None:
    report = replay(store, load_catalog(EXAMPLE))
    assert report.rerated > 7000 and (report.changed, report.appended) == (0, 0)


def test_an_unknown_wallet_or_an_empty_window_is_an_error(rated: Rated, store: EventStore) -> None:
    with pytest.raises(ReplayError, match="no wallet 'nobody'"):
        replay(store, rated.new_catalog, wallet="nobody")
    at = datetime(2026, 10, 1, tzinfo=UTC)
    with pytest.raises(ReplayError, match="empty"):
        replay(store, rated.new_catalog, start=at, end=at)


# -- the command line ----------------------------------------------------------------------


def test_cli_prints_the_impact_per_wallet_and_provider(
    rated: Rated, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.db"
    shutil.copy(rated.store, path)
    url = f"sqlite:///{path}"
    args = ["replay", "--store", url, "--catalog", str(rated.new_catalog_path)]
    assert main([*args, "--dry-run", "--json", "--from", "2026-09-01T00:00:00Z"]) == 0
    dry = msgspec.json.decode(capsys.readouterr().out, type=ReplayReport)
    assert dry.dry_run and dry.changed > 0 and dry.replay.startswith("new.yaml@")
    assert dry.start == datetime(2026, 9, 1, tzinfo=UTC)
    assert main([*args, "--no-progress"]) == 0
    table = capsys.readouterr().out
    for name in ("acme", "globex", "initech", "umbrella", "telco-a", "platform", "reseller"):
        assert name in table
    assert f"{dry.changed:,} adjustments" in table
    assert main([*args, "--json"]) == 0
    assert msgspec.json.decode(capsys.readouterr().out, type=ReplayReport).changed == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--from", "yesterday"], "--from 'yesterday' is not an ISO 8601 time"),
        (["--to", "2026-10-01T00:00:00"], "needs a UTC offset"),
        (["--from", "2026-10-01T00:00:00Z", "--to", "2026-09-01T00:00:00Z"], "window is empty"),
        (["--wallet", "nobody"], "no wallet 'nobody'"),
    ],
)
def test_cli_misuse_prints_usage_and_exits_2(
    rated: Rated, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "replay",
        "--store",
        f"sqlite:///{rated.store}",
        "--catalog",
        str(rated.new_catalog_path),
    ]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: rating-engine") and message in err


def test_cli_without_a_store_or_with_a_missing_catalog_fails_cleanly(
    rated: Rated, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["replay", "--catalog", str(rated.new_catalog_path)])
    assert exited.value.code == 2
    assert "--store" in capsys.readouterr().err
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert main(["replay", "--store", url, "--catalog", str(tmp_path / "none.yaml")]) == 1
    assert "none.yaml" in capsys.readouterr().err
