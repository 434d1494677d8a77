"""One job's share of a replay: it settles in run order whatever order the adjustments reach
it, and the parts of several jobs add up to one tally (the whole replay:
tests/offline/test_replay.py, tests/offline/test_replay_jobs.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from engine.catalog import load_catalog
from engine.domain import AdjustRating
from engine.domain.events import SplitLine
from engine.domain.replay import Comparison
from engine.offline.replay_shard import Part, ShardReplay, Tally, combine
from engine.store import open_store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"
AT = datetime(2026, 9, 1, tzinfo=UTC)


def _adjust(n: int, amount: int) -> AdjustRating:
    return AdjustRating(
        command_id=f"adj:cdr:{n}:1",
        wallet_id="acme",
        at=AT,
        cdr_id=f"cdr-{n}",
        iccid="8900000000000000001",
        service="sms",
        zone="EU",
        replay="test",
        amount=amount,
        charged_volume=0,
        plan_version=1,
        splits=(),
    )


def test_decides_in_run_order_whatever_order_it_is_handed(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'events.db'}")
    try:
        run = ShardReplay(store, load_catalog(EXAMPLE), "test", False, lambda n: None)
        run.settle([(2, 0, _adjust(3, 30)), (0, 1, _adjust(2, 20)), (0, 0, _adjust(1, 10))])
    finally:
        store.close()
    part = run.part()
    assert [(i, p) for i, p, _ in part.decided] == [(0, 0), (0, 1), (2, 0)]
    decided = [d.command.command_id for _, _, d in part.decided if d.command is not None]
    assert decided == ["adj:cdr:1:1", "adj:cdr:2:1", "adj:cdr:3:1"]
    # a wallet the store does not hold rejects them, and the part says so
    assert part.commands == part.rejected == 3


def test_parts_add_up() -> None:
    a = Part({"acme": [2, 1, 5, 5]}, {"telco-a": [2, 1, 3]}, 1, 0, 0, [])
    b = Part({"acme": [1, 1, 1, 0], "globex": [4, 0, 0, 0]}, {"telco-a": [1, 0, 0]}, 2, 1, 0, [])
    tally = combine([a, b])
    assert tally.wallets == {"acme": [3, 2, 6, 5], "globex": [4, 0, 0, 0]}
    assert tally.providers == {"telco-a": [3, 1, 3]}


def test_a_tally_counts_every_provider_a_cdr_names_and_what_moved() -> None:
    """An unchanged CDR (no command) counts each of its providers as re-rated; a changed one
    counts the providers of either rating, and the difference of each."""
    same = (SplitLine("telco-a", 5), SplitLine("platform", 3))
    tally = Tally()
    tally.count(Comparison("acme", "k1", "cdr-1", AT, same, same))
    moved = (SplitLine("telco-a", 5), SplitLine("reseller", 2))
    tally.count(
        Comparison("acme", "k2", "cdr-2", AT, moved, (SplitLine("telco-a", 7),), (_adjust(2, 0),))
    )
    assert tally.wallets == {"acme": [2, 1, 0, 0]}
    assert tally.providers == {"telco-a": [2, 1, 2], "platform": [1, 0, 0], "reseller": [1, 1, -2]}
