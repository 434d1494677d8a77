"""At the limits of the contract the projections still equal the store, value for value.

A 2^63-1 byte CDR used to overflow the ``Int64`` columns silently; now every accepted value
is bounded by the catalog's limits, and with the limits as high as a catalog may set them
the rows in ClickHouse equal the events they were projected from.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.catalog.limits import MAX_VOLUME_CEILING
from engine.domain import Catalog, Cdr, TopUp, UsageRated
from engine.domain.events import Event
from engine.domain.limits import Limits
from engine.domain.money import format_money
from engine.offline.pipeline import Pipeline
from engine.projections.clickhouse import connect
from engine.projections.projector import Projector

ICCID = "89441000000000900002"  # acme's, data at 0.0195 EUR per MB
HIGHEST_AMOUNT = ((1 << 63) - 1) // 1024
"""The largest max_top_up / max_charge a catalog may set (engine/catalog/limits.py)."""
START = datetime(2026, 9, 10, tzinfo=UTC)
_databases = itertools.count(1)

VOLUMES = st.one_of(
    st.integers(min_value=0, max_value=MAX_VOLUME_CEILING),
    st.sampled_from([MAX_VOLUME_CEILING, MAX_VOLUME_CEILING - 1, 1 << 53, 10**17]),
)
AMOUNTS = st.one_of(
    st.integers(min_value=1, max_value=HIGHEST_AMOUNT),
    st.sampled_from([HIGHEST_AMOUNT, HIGHEST_AMOUNT - 1, 1]),
)


def widest(catalog: Catalog) -> Catalog:
    everything = dict.fromkeys(("data", "sms", "voice", "event"), MAX_VOLUME_CEILING)
    limits = Limits(max_volume=everything, max_amount=HIGHEST_AMOUNT, max_charge=HIGHEST_AMOUNT)
    return msgspec.structs.replace(catalog, limits=limits)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    inputs=st.lists(
        st.one_of(st.tuples(st.just("cdr"), VOLUMES), st.tuples(st.just("top_up"), AMOUNTS)),
        min_size=1,
        max_size=8,
    )
)
def test_projection_equals_the_store_at_the_limits(
    catalog: Catalog, chdb_path: Path, inputs: list[tuple[str, int]]
) -> None:
    cat = widest(catalog)
    pipeline = Pipeline(cat)
    events: list[Event] = []
    for n, (kind, value) in enumerate(inputs):
        at = START + timedelta(minutes=n)
        item: Cdr | TopUp
        if kind == "cdr":
            item = Cdr(f"x{n}", ICCID, "data", at, value, "262", "01")
        else:
            item = TopUp(f"t{n}", "acme", at, format_money(value), "EUR")
        result = pipeline.feed(item)
        assert isinstance(result, list)
        events += result
    client = connect(f"chdb://{chdb_path}?database=extremes{next(_databases)}")
    try:
        projector = Projector(client, cat)
        projector.create()
        projector.apply(events)
        rated = [e for e in events if isinstance(e, UsageRated)]
        rows = client.query(
            "SELECT event_id, volume, rated_volume, pooled_volume, charged_volume, amount "
            "FROM usage_facts FINAL ORDER BY event_id"
        ).result_rows
        expected = sorted(
            (e.id, e.volume, e.rated_volume, e.pooled_volume, e.charged_volume, e.amount)
            for e in rated
        )
        assert [tuple(r) for r in rows] == expected
        for e in rated:
            assert e.amount <= HIGHEST_AMOUNT and e.rated_volume < 1 << 63
        balances = dict(client.query("SELECT wallet, balance FROM wallet_balances").result_rows)
        state = pipeline.states.get("acme")
        assert balances.get("acme", 0) == (state.balance if state is not None else 0)
    finally:
        client.close()
