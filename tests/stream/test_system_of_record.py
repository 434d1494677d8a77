"""The stream is the system of record: provisioning by command, a catalog revision published
mid-run and a replay all reach the wallets' owners through Kafka, and afterwards

- each wallet's events in the store are exactly those of the offline run of the same inputs
  (with the same revisions), to the byte;
- the worker's live state (its last snapshot of each wallet partition) equals the fold of
  the store, wallet by wallet;
- the projections the sink kept live equal a rebuild of the store.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from support.clickhouse import everything

from engine.catalog import load_catalog
from engine.cli import main
from engine.codec import decode_cdr, decode_event, encode, read_command
from engine.domain import Catalog, Cdr, Event, WalletState, initial_state
from engine.domain.commands import (
    AdoptCatalog,
    AttachSim,
    ChangePlan,
    Command,
    DetachSim,
    OpenWallet,
    TopUp,
)
from engine.domain.events import UsageRated
from engine.domain.evolve import evolve
from engine.offline.pipeline import Pipeline
from engine.offline.replay import ReplayReport, replay
from engine.projections.clickhouse import connect
from engine.projections.projector import Projector
from engine.store import EventStore, open_store
from engine.stream.recovery import read_records
from engine.stream.sink import Sink, SinkProgress, SinkSettings
from engine.stream.snapshots import restore

from .harness import (
    CATALOG,
    PRICE_CHANGE,
    SPLIT_CHANGE,
    Stack,
    all_decided,
    changed_catalog,
    metric,
    read_topic,
    wait_until,
)

NEW1, NEW2 = "89441000000000999101", "89441000000000999102"
CHANGED = "89441000000000100007"  # an acme SIM of the catalog, moved to another plan
T0 = datetime(2026, 9, 2, tzinfo=UTC)
MOVE = T0 + timedelta(days=5)


@pytest.fixture
def stack(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(kafka_bootstrap, tmp_path, raw_partitions=1)
    yield s
    s.stop_worker()


def _provisioning() -> list[Command]:
    day = T0 + timedelta(days=1)
    return [
        OpenWallet(
            command_id="open-shop",
            wallet_id="shop",
            at=T0,
            currency="EUR",
            name="Shop",
            overdraft_limit="5.00",
            suspend_at="-5.00",
            resume_at="1.00",
            thresholds=("20.00",),
        ),
        TopUp(command_id="shop-top", wallet_id="shop", at=T0, amount="30.00", currency="EUR"),
        AttachSim(command_id="att-1", wallet_id="shop", at=T0, iccid=NEW1, plan="iot-eu"),
        AttachSim(command_id="att-2", wallet_id="acme", at=T0, iccid=NEW2, plan="iot-eu"),
        ChangePlan(command_id="chg-1", wallet_id="acme", at=day, iccid=CHANGED, plan="iot-global"),
    ]


def _move() -> list[Command]:
    return [
        DetachSim(command_id="mv-out", wallet_id="acme", at=MOVE, iccid=NEW2),
        AttachSim(command_id="mv-in", wallet_id="globex", at=MOVE, iccid=NEW2, plan="iot-eu"),
    ]


def _usage(tmp_path: Path, name: str, seed: int, start: datetime, sims: list[str]) -> Path:
    """Generated CDRs of the catalog's SIMs, then a few of ``sims`` (SMS and data)."""
    raw = tmp_path / f"{name}-raw.jsonl"
    args = ["generate", "--catalog", str(CATALOG), "--sims", "150", "--cdrs", "500"]
    args += ["--seed", str(seed), "--days", "20", "--faults", "0", "--out", str(raw)]
    assert main(args) == 0
    lines = raw.read_bytes().replace(b'"apn":"partner.acme"', b'"apn":"iot.telco"').splitlines()
    for n, iccid in enumerate(sims * 4):
        at = start + timedelta(hours=n + 1)
        service, volume = ("sms", 1) if n % 2 else ("data", 250_000)
        record: dict[str, object] = {"cdr_id": f"{name}-{n}", "iccid": iccid}
        record |= {"service": service, "started_at": at.isoformat(), "volume": volume}
        record |= {"mcc": "262", "mnc": "01"}
        lines.append(msgspec.json.encode(record))
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _send(stack: Stack, tmp_path: Path, name: str, commands: list[Command]) -> None:
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(b"".join(encode(c) + b"\n" for c in commands))
    stack.cli("command", "--input", str(path))


def _sink_until(sink: Sink, done: object, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds

    def check(progress: SinkProgress) -> None:
        if done() or time.monotonic() > deadline:  # type: ignore[operator]
            sink.stop()

    sink.run(check)


def _price(store: EventStore, cdr_id: str) -> int:
    for rows in store.read_all():
        for r in rows:
            if r.type == "UsageRated":
                event = decode_event(r.payload)
                if isinstance(event, UsageRated) and event.cdr_id == cdr_id:
                    return event.amount
    raise AssertionError(f"{cdr_id} was not rated")


def _settled(stack: Stack, store: EventStore) -> Callable[[], bool]:
    """A check that holds once every input sent so far is decided and committed, and the
    store has not grown for three seconds since (the sink has read it all)."""
    seen = {"position": -1, "since": 0.0, "asked": 0.0}

    def check() -> bool:
        now = time.monotonic()
        if now - seen["asked"] < 1.0:
            return False
        seen["asked"] = now
        if store.position() != seen["position"] or not all_decided(stack, commands=True):
            seen["position"], seen["since"] = store.position(), now
            return False
        return now - seen["since"] >= 3.0

    return check


def _count(store: EventStore, kind: str) -> int:
    return sum(1 for rows in store.read_all() for r in rows if r.type == kind)


def _cdrs(path: Path) -> list[Cdr]:
    out = [decode_cdr(line) for line in path.read_bytes().splitlines() if line.strip()]
    return [c for c in out if isinstance(c, Cdr)]


def _by_wallet(store: EventStore, after: int = 0) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for rows in store.read_all(after=after):
        for r in rows:
            out.setdefault(r.wallet_id, []).append(r.payload)
    return out


def _folded(store: EventStore) -> dict[str, WalletState]:
    states: dict[str, WalletState] = {}
    for rows in store.read_all():
        for r in rows:
            e: Event = decode_event(r.payload)
            states[e.wallet_id] = evolve(states.get(e.wallet_id) or initial_state(e.wallet_id), e)
    return states


def _live(stack: Stack) -> dict[str, WalletState]:
    """The worker's live state: its latest snapshot of every wallet partition."""
    spec = stack.topics.wallet_snapshots
    out: dict[str, WalletState] = {}
    for p in range(spec.partitions):
        snapshot, torn = restore(read_records(stack.bootstrap, spec.name, p), p)
        assert not torn, f"the snapshot of partition {p} is not whole"
        if snapshot is not None:
            out.update(snapshot.wallets)
    return out


def _differences(a: dict[str, WalletState], b: dict[str, WalletState]) -> list[str]:
    out = [f"{w}: only on one side" for w in sorted(set(a) ^ set(b))]
    for w in sorted(set(a) & set(b)):
        for field in a[w].__struct_fields__:
            if getattr(a[w], field) != getattr(b[w], field):
                out.append(f"{w}.{field}: {getattr(a[w], field)!r} != {getattr(b[w], field)!r}")
    return out


def _adopt_commands(stack: Stack) -> list[AdoptCatalog]:
    records = read_topic(stack.bootstrap, stack.topics.wallet_commands.name, quiet=2.0)
    found = [read_command(r) for r in records if b"AdoptCatalog" in r]
    return [c for c in found if isinstance(c, AdoptCatalog)]


def _offline(
    revisions: dict[int, Catalog], phases: list[Sequence[Cdr | Command]]
) -> dict[str, list[bytes]]:
    pipeline = Pipeline(revisions[1], revisions=revisions)
    out: dict[str, list[bytes]] = {}
    for phase in phases:
        for item in phase:
            events = pipeline.feed(item)
            for e in events if isinstance(events, list) else ():
                out.setdefault(e.wallet_id, []).append(encode(e))
    return out


def test_provisioning_a_revision_and_a_replay_leave_every_view_equal(
    stack: Stack, tmp_path: Path, chdb_path: Path
) -> None:
    c1 = load_catalog(CATALOG)
    c2_path = changed_catalog(tmp_path, "revision-2.yaml", PRICE_CHANGE)
    c3_path = changed_catalog(tmp_path, "replay.yaml", PRICE_CHANGE, SPLIT_CHANGE)
    first = _usage(tmp_path, "first", 61, T0, [NEW1, NEW2, CHANGED])
    second = _usage(tmp_path, "second", 62, MOVE, [NEW1, NEW2, CHANGED])

    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = open_store(url)
    live = connect(f"chdb://{chdb_path}?database=record_live")
    settings = SinkSettings(stack.bootstrap, group="record-sink", batch_size=300)

    def sink_until(done: object) -> None:
        _sink_until(Sink(settings, stack.topics, store, Projector(live, c1)), done)

    stack.start_worker("--snapshot-every", "0.001")
    provisioning, move = _provisioning(), _move()
    _send(stack, tmp_path, "provisioning", provisioning)
    sink_until(lambda: store.position() >= len(provisioning))

    stack.cli("publish", "--input", str(first), "--no-progress")
    sink_until(_settled(stack, store))
    _send(stack, tmp_path, "move", move)
    sink_until(_settled(stack, store))
    published = stack.cli("catalog", "publish", str(c2_path), "--json")
    assert msgspec.json.decode(published.stdout)["revision"] == 2
    wallets = {*c1.wallets, "shop"}
    sink_until(lambda: _count(store, "CatalogAdopted") >= len(wallets))
    stack.cli("publish", "--input", str(second), "--no-progress")
    sink_until(_settled(stack, store))

    # Stream equals offline: the same inputs, in the same order, with the same revisions.
    adopt = _adopt_commands(stack)
    assert {c.wallet_id for c in adopt} == wallets
    revisions = {1: c1, 2: load_catalog(c2_path)}
    phases: list[Sequence[Cdr | Command]] = [provisioning, _cdrs(first), move, adopt]
    phases.append(_cdrs(second))
    expected = _offline(revisions, phases)
    assert _by_wallet(store) == expected
    assert expected["shop"] and any(b"UsageRated" in e for e in expected["globex"])
    # The revision took effect without a restart: the same SIM's SMS, on iot-eu in the EU,
    # at revision 1's price before it and at revision 2's after.
    assert (_price(store, "first-1"), _price(store, "second-1")) == (50_000, 60_000)

    # A restart (on the first revision's file) undoes none of it: each wallet's revision is
    # part of its state, recovered from its snapshot and wallet.events.
    # It builds only the catalog its wallets are on (revision 2), not its file's.
    stack.stop_worker()
    restarted = stack.start_worker("--snapshot-every", "0.001", metrics=True)

    def built() -> float:
        return metric(restarted.port, "rating_catalogs_built")

    wait_until(lambda: built() > 0, "the restarted worker's metrics", 60)
    assert built() == 1

    # A replay through the owners: what an offline replay of the same store appends.
    _replay_through_owners(stack, tmp_path, store, url, c3_path, sink_until)

    # The worker's live state, the fold of the store and the projections agree. A partition's
    # snapshot holds its state as of its previous transaction, so the adoptions are sent
    # again (they decide nothing now) to have every partition snapshot what it holds.
    folded = _folded(store)
    _send(stack, tmp_path, "probe", list(adopt))
    try:
        wait_until(lambda: _live(stack) == folded, "the live state to equal the store", 60)
    except AssertionError:
        assert _differences(_live(stack), folded) == []
    rebuilt = connect(f"chdb://{chdb_path}?database=record_rebuilt")
    assert Projector(rebuilt, c1).rebuild(store) == store.position()
    assert everything(live) == everything(rebuilt)
    assert store.verify() == []
    for client in (live, rebuilt):
        client.close()
    store.close()


def _replay_through_owners(
    stack: Stack,
    tmp_path: Path,
    store: EventStore,
    url: str,
    catalog: Path,
    sink_until: Callable[[object], None],
) -> None:
    """``replay --mode stream`` sends the differences to the owners; the store then holds
    exactly the adjustments an offline replay of a copy of it appends."""
    with (
        sqlite3.connect(tmp_path / "events.db") as source,
        sqlite3.connect(tmp_path / "offline.db") as copy,
    ):
        source.backup(copy)
    offline_store = open_store(f"sqlite:///{tmp_path / 'offline.db'}")
    label = f"{catalog.name}@{hashlib.sha256(catalog.read_bytes()).hexdigest()[:12]}"
    offline: ReplayReport = replay(offline_store, load_catalog(catalog), label=label)
    expected = _adjustments(offline_store)
    offline_store.close()
    assert offline.changed > 0
    sent = stack.cli(
        "replay", "--store", url, "--catalog", str(catalog), "--mode", "stream", "--json"
    )
    report = msgspec.json.decode(sent.stdout, type=ReplayReport)
    assert report.published == report.commands == offline.commands > 0
    sink_until(lambda: len(_adjustments(store)) >= len(expected))
    sink_until(_settled(stack, store))
    assert sorted(_adjustments(store)) == sorted(expected)


def _adjustments(store: EventStore) -> list[bytes]:
    return [r.payload for rows in store.read_all() for r in rows if r.type == "RatingAdjusted"]
