"""Hostile input offline: every poison record is rejected with a reason, the run goes on.

The same inputs that made a streaming worker exit on every restart made ``rating-engine
rate`` stop with a traceback; the fuzz tests drive decode -> decide and the CLI with
arbitrary bytes and near-valid records and prove that nothing raises.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.postgres import fresh_schema

from engine.catalog import load_catalog
from engine.cli import main
from engine.codec import Rejected, decode_cdr, read_command
from engine.domain import Catalog, Tick
from engine.domain.limits import Limits
from engine.offline.pipeline import Pipeline
from engine.projections.clickhouse import connect
from engine.store import open_store

REPO = Path(__file__).resolve().parents[2]
CATALOG = str(REPO / "examples" / "catalog.yaml")
ICCID = "89441000000000900002"  # acme, active 2026-08-01 .. 2026-09-15

GOOD_CDR: dict[str, Any] = {
    "cdr_id": "ok-1",
    "iccid": ICCID,
    "service": "data",
    "started_at": "2026-09-10T14:05:00+02:00",
    "volume": 1234567,
    "mcc": "262",
    "mnc": "01",
}
GOOD_TOP_UP: dict[str, Any] = {
    "type": "TopUp",
    "command_id": "tu-ok",
    "wallet_id": "acme",
    "at": "2026-09-10T10:00:00Z",
    "amount": "5.00",
    "currency": "EUR",
}

TICK: dict[str, Any] = {
    "type": "Tick",
    "command_id": "t",
    "wallet_id": "acme",
    "at": "2026-09-10T00:00:00Z",
}


def line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


def cdr(**changes: Any) -> bytes:
    return line({**GOOD_CDR, **changes})


def deep(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CATALOG)


def _rate(tmp_path: Path, cdrs: list[bytes], commands: list[bytes]) -> tuple[int, dict, list, list]:  # type: ignore[type-arg]
    cdr_file, cmd_file = tmp_path / "cdrs.jsonl", tmp_path / "cmds.jsonl"
    cdr_file.write_bytes(b"\n".join(cdrs) + b"\n")
    cmd_file.write_bytes(b"\n".join(commands) + b"\n")
    events, rejected = tmp_path / "ev.jsonl", tmp_path / "rej.jsonl"
    args = ["rate", "--catalog", CATALOG, "--input", str(cdr_file), "--commands", str(cmd_file)]
    args += ["--events-out", str(events), "--rejected-out", str(rejected), "--json"]

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(args)
    decoded = [msgspec.json.decode(x) for x in events.read_bytes().splitlines()]
    refused = [msgspec.json.decode(x) for x in rejected.read_bytes().splitlines()]
    return code, msgspec.json.decode(out.getvalue()), decoded, refused


@pytest.mark.chaos
def test_poison_records_are_rejected_with_reasons_and_the_run_goes_on(tmp_path: Path) -> None:
    noise = bytes(b for b in random.Random(7).randbytes(1_000_000) if b not in b"\r\n")[:900_000]
    cdrs = [
        deep(2000),
        noise,
        cdr(cdr_id="far", started_at="9999-12-31T23:59:59Z"),
        cdr(cdr_id="nul\u0000id"),
        cdr(cdr_id="huge", volume=1 << 70),
        cdr(cdr_id="max", volume=(1 << 63) - 1),
        cdr(),
    ]
    commands = [
        deep(2000),
        line({**TICK, "command_id": "far", "at": "9999-12-31T23:59:59Z"}),
        line({**GOOD_TOP_UP, "command_id": "big", "amount": "1" + "0" * 30}),
        line({**GOOD_TOP_UP, "command_id": "prio", "priority": 1 << 70}),
        line({**GOOD_TOP_UP, "command_id": "ghost", "wallet_id": "ghost"}),
        line(GOOD_TOP_UP),
    ]
    code, summary, events, rejected = _rate(tmp_path, cdrs, commands)
    assert code == 0 and summary["balanced"] is True
    reasons = sorted(r["reason"] for r in rejected)
    expected = ["too_deep", "too_deep", "too_large", "invalid_time", "invalid_time"]
    assert reasons == sorted([*expected, "invalid_field", "unknown_wallet"])
    too_large = next(r for r in rejected if r["reason"] == "too_large")
    assert too_large["raw_length"] == len(noise) and len(too_large["raw_sha256"]) == 64
    by_reason = {e.get("reason"): e for e in events if e["type"].endswith("Rejected")}
    assert by_reason["volume_over_limit"]["cdr_id"] in {"huge", "max"}
    assert sum(1 for e in events if e.get("reason") == "volume_over_limit") == 2
    assert by_reason["amount_over_limit"]["command_id"] == "big"
    assert by_reason["invalid_priority"]["command_id"] == "prio"
    # nothing absurd charged, no stream for the unknown wallet, the good inputs decided
    assert [e["cdr_id"] for e in events if e["type"] == "UsageRated"] == ["ok-1"]
    assert not [e for e in events if e["wallet_id"] == "ghost"]
    assert [e["grant"]["amount"] for e in events if e["type"] == "GrantAdded"] == [5_000_000]


def test_a_decision_that_raises_is_rejected_as_internal_error_and_changes_nothing(
    catalog: Catalog,
) -> None:
    # A catalog built in code can set limits no YAML may (past the year 9999): the cycle
    # arithmetic then raises, which must end in a rejection, never a traceback.
    reckless = msgspec.structs.replace(catalog, limits=Limits(latest=1 << 40))
    pipeline = Pipeline(reckless)
    first = pipeline.feed(decode_cdr(cdr()))  # type: ignore[arg-type]
    assert not isinstance(first, Rejected)
    before = dict(pipeline.states)
    far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    result = pipeline.feed(Tick(command_id="far", wallet_id="acme", at=far))
    assert isinstance(result, Rejected) and result.reason == "internal_error"
    assert result.detail.startswith("ValueError")
    assert pipeline.states == before
    assert pipeline.rejected["internal_error"] == 1


# -- fuzz --------------------------------------------------------------------------------

HOSTILE = st.one_of(
    st.none(),
    st.integers(min_value=-(1 << 80), max_value=1 << 80),
    st.sampled_from([(1 << 63) - 1, 1 << 64, -1, 0, 1e308, float("inf")]),
    st.text(max_size=20),
    st.sampled_from(
        [
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "2026-09-10T14:05:00",
            "1970-01-01T00:00:00Z",
            "a\u0000b",
            "\u202e",
            "1" + "0" * 40,
            "-0",
            "1e30",
        ]
    ),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
CDR_FIELDS = [*GOOD_CDR, "apn", "rat", "source", "duration_s"]
COMMANDS: list[dict[str, Any]] = [
    GOOD_TOP_UP,
    {"type": "Tick", "command_id": "t", "wallet_id": "acme", "at": "2026-09-10T00:00:00Z"},
    {
        "type": "RedeemVoucher",
        "command_id": "v",
        "wallet_id": "acme",
        "at": "2026-09-10T00:00:00Z",
        "code": "x",
    },
    {
        "type": "ApplyCharge",
        "command_id": "a",
        "wallet_id": "acme",
        "at": "2026-09-10T00:00:00Z",
        "source_wallet": "globex",
        "cdr_id": "c",
        "amount": 5,
    },
    {
        "type": "AdjustRating",
        "command_id": "r",
        "wallet_id": "acme",
        "at": "2026-09-10T00:00:00Z",
        "cdr_id": "c",
        "iccid": ICCID,
        "service": "data",
        "zone": "EU",
        "replay": "r1",
        "amount": 3,
        "charged_volume": 1,
        "plan_version": 1,
        "splits": [["telco-a", 3]],
    },
    {
        "type": "AttachSim",
        "command_id": "s",
        "wallet_id": "acme",
        "at": "2026-09-10T00:00:00Z",
        "iccid": "89441000000000999999",
        "plan": "iot-eu",
    },
]


@st.composite
def near_valid_cdrs(draw: st.DrawFn) -> bytes:
    record = dict(GOOD_CDR)
    for key in draw(st.lists(st.sampled_from(CDR_FIELDS), max_size=3, unique=True)):
        record[key] = draw(HOSTILE)
    if draw(st.booleans()):
        record.pop(draw(st.sampled_from(list(record))))
    return json.dumps(record).encode()


@st.composite
def near_valid_commands(draw: st.DrawFn) -> bytes:
    record = dict(draw(st.sampled_from(COMMANDS)))
    for key in draw(st.lists(st.sampled_from(sorted(record)), max_size=3, unique=True)):
        record[key] = draw(HOSTILE)
    return json.dumps(record).encode()


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.one_of(near_valid_cdrs(), near_valid_commands(), st.binary(max_size=512)))
def test_decode_then_decide_never_raises(catalog: Catalog, raw: bytes) -> None:
    pipeline = Pipeline(catalog)
    for item in (decode_cdr(raw), read_command(raw)):
        if isinstance(item, Rejected):
            assert item.reason
            continue
        result = pipeline.feed(item)
        if isinstance(result, Rejected):
            assert result.reason != "internal_error", result.detail
        for event in result if isinstance(result, list) else ():
            for field in ("amount", "volume", "rated_volume", "charged_volume", "balance"):
                value = getattr(event, field, 0)
                assert isinstance(value, int) and abs(value) < 1 << 63


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    cdrs=st.lists(st.one_of(near_valid_cdrs(), st.binary(max_size=256)), max_size=6),
    commands=st.lists(near_valid_commands(), max_size=4),
)
def test_the_offline_cli_never_raises(
    tmp_path_factory: pytest.TempPathFactory, cdrs: list[bytes], commands: list[bytes]
) -> None:
    tmp = tmp_path_factory.mktemp("fuzz")
    cdrs = [c.replace(b"\n", b" ").replace(b"\r", b" ") for c in cdrs]
    code, summary, _, _ = _rate(tmp, cdrs, commands)
    # 3: the summary does not reconcile (an AdjustRating in a commands file moves money the
    # summary does not count); what matters here is that the run ends with its summary.
    assert code in (0, 3) and summary["inputs"] >= len(commands)


@pytest.mark.chaos
def test_poison_never_reaches_postgresql_or_the_projections(
    tmp_path: Path, postgres_url: str, chdb_path: Path
) -> None:
    """A cdr_id with NUL was rated, then every append to PostgreSQL failed on it; now it is
    rejected at decode, and the store and the projections take what was accepted."""
    cdr_file, cmd_file = tmp_path / "cdrs.jsonl", tmp_path / "cmds.jsonl"
    cdr_file.write_bytes(
        b"\n".join([cdr(cdr_id="nul\u0000id"), cdr(cdr_id="max", volume=(1 << 63) - 1), cdr()])
    )
    cmd_file.write_bytes(line({**GOOD_TOP_UP, "command_id": "ghost", "wallet_id": "ghost"}))
    clickhouse = f"chdb://{chdb_path}?database=poison_rate"
    with fresh_schema(postgres_url) as url:
        args = ["rate", "--catalog", CATALOG, "--input", str(cdr_file)]
        args += ["--commands", str(cmd_file), "--store", url, "--clickhouse", clickhouse]

        with contextlib.redirect_stdout(io.StringIO()):
            assert main([*args, "--json"]) == 0
        store = open_store(url)
        try:
            assert store.verify() == []
            events = [msgspec.json.decode(e.payload) for b in store.read_all() for e in b]
        finally:
            store.close()
    assert [e["cdr_id"] for e in events if e["type"] == "UsageRated"] == ["ok-1"]
    assert {e["wallet_id"] for e in events} == {"acme"}
    client = connect(clickhouse)
    try:
        rows = client.query("SELECT cdr_id, volume FROM usage_facts FINAL").result_rows
    finally:
        client.close()
    assert [tuple(r) for r in rows] == [("ok-1", GOOD_CDR["volume"])]
