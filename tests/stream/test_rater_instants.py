"""The rate agent converts each CDR's start to epoch seconds once, for its age histogram and
for its admission: what it decides must be what the offline step decides from the record
alone, and refusals at the time bounds must come out the same. It names the transaction's
last decision once per record it answers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from engine.catalog import load_catalog
from engine.codec import decode_cdr, decode_decision
from engine.domain import Cdr, initial_state, step
from engine.domain.limits import admit
from engine.domain.refusal import Refused
from engine.domain.routing import wallet_of
from engine.offline.generate import generate_cdrs
from engine.stream.metrics import Metrics
from engine.stream.positions import Record
from engine.stream.processor import RatingProcessor, decision_id
from engine.stream.rater import BatchTally
from engine.stream.routed import RoutedGroup
from engine.stream.topics import REPO_TOPICS, load_topics

from .harness import CATALOG, partition_zero_rater


def _answered(lines: list[bytes]) -> tuple[list[Any], list[Any], Metrics]:
    """``lines`` routed to partition 0 in one record and answered by a rater: each decision
    produced, the rejections, and the metrics. The transaction names its last decision."""
    catalog = load_catalog(CATALOG)
    names = load_topics(REPO_TOPICS, environ={})
    processor = RatingProcessor(catalog)
    processor.recover(0, [])
    metrics = Metrics()
    rejected: list[Any] = []
    rater = partition_zero_rater(names, processor, metrics, rejected)
    group = RoutedGroup(partition=0)
    for offset, line in enumerate(lines):
        cdr = decode_cdr(line)
        assert isinstance(cdr, Cdr)
        wallet = wallet_of(catalog, {}, cdr.iccid, 0)
        assert wallet is not None
        group.add(wallet, offset, 0, line)
    produced: list[Any] = []

    def produce(topic: str, key: bytes, value: bytes, partition: int | None = None) -> None:
        if topic == names.wallet_events.name:
            produced.append(decode_decision(value))

    out = SimpleNamespace(produce=produce, last_decision="")
    record = Record(names.cdr_by_wallet.name, 0, 0, b"w", group.encode(), 0.0, None)
    tally = BatchTally()
    rater.answer(out, record, tally)  # type: ignore[arg-type]
    rater.observe(tally, 2_000_000_000.0)
    assert out.last_decision == (decision_id(produced[-1]) if produced else "")
    return produced, rejected, metrics


def test_the_rater_decides_what_the_offline_step_decides_from_the_record_alone() -> None:
    catalog = load_catalog(CATALOG)
    lines = list(generate_cdrs(catalog, 40, 300, seed=7, faults=0.0))
    decisions, rejected, metrics = _answered(lines)
    cdrs = [cdr for cdr in map(decode_cdr, lines) if isinstance(cdr, Cdr)]
    assert len(cdrs) == len(lines)
    # Most generated CDRs carry a visited network's offset: the conversion is not trivial.
    assert len({cdr.started_at.utcoffset() for cdr in cdrs}) > 1
    states: dict[str, Any] = {}
    expected = []
    for cdr in cdrs:
        wallet = wallet_of(catalog, {}, cdr.iccid, 0)
        assert wallet is not None
        events, states[wallet] = step(states.get(wallet) or initial_state(wallet), cdr, catalog)
        if events:
            expected.append(events)
    assert not rejected
    assert [list(d.events) for d in decisions] == expected
    starts = [cdr.started_at.timestamp() for cdr in cdrs]
    age_sum = metrics.registry.get_sample_value("rating_cdr_age_seconds_sum")
    assert age_sum == pytest.approx(sum(2_000_000_000.0 - s for s in starts), abs=0.01)


def _line(cdr_id: str, iccid: str, at: datetime) -> bytes:
    record = {
        "cdr_id": cdr_id,
        "iccid": iccid,
        "service": "data",
        "started_at": at.isoformat(),
        "volume": 1024,
        "mcc": "262",
        "mnc": "01",
    }
    return msgspec.json.encode(record)


def test_the_time_bounds_refuse_alike_at_a_fraction_of_a_second() -> None:
    """Half a second either side of the first instant the catalog allows, written with an
    offset: the rater refuses (and admits) the same CDRs as the offline step."""
    catalog = load_catalog(CATALOG)
    earliest = datetime.fromtimestamp(catalog.limits.earliest, timezone(timedelta(hours=-5)))
    iccid = sorted(catalog.subscriptions)[0]
    lines = [
        _line("before", iccid, earliest - timedelta(milliseconds=500)),
        _line("after", iccid, earliest + timedelta(milliseconds=500)),
    ]
    decisions, rejected, _ = _answered(lines)
    assert [(r.cdr_id, r.reason) for r in rejected] == [("before", "invalid_time")]
    assert [d.input for d in decisions] == ["cdr:after"]  # admitted: its wallet decides
    for line in lines:
        cdr = decode_cdr(line)
        assert isinstance(cdr, Cdr)
        wallet = wallet_of(catalog, {}, cdr.iccid, 0) or ""
        given = cdr.started_at.timestamp()
        try:
            alone: int | str = admit(catalog, wallet, cdr)
        except Refused as refusal:
            alone = refusal.reason
        try:
            converted: int | str = admit(catalog, wallet, cdr, at_ts=given)
        except Refused as refusal:
            converted = refusal.reason
        assert alone == converted
