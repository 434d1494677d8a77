"""The summary of an offline run: totals over its events, a row per wallet that reconciles,
and a verdict that money balances to the micro-unit, which a single stray line upsets."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from engine.catalog import load_catalog
from engine.codec import Rejected, decode_cdr, read_command
from engine.domain import Cdr, Command, TopUp
from engine.domain.commands import CloseWallet, OpenWallet
from engine.offline.generate import generate_cdrs, generate_commands
from engine.offline.pipeline import Pipeline
from engine.offline.summary import Summary, Totals, render, summarize

CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml")


def run(faults: float = 0.0) -> tuple[Pipeline, Totals, int]:
    items: list[Cdr | Command | Rejected] = [
        read_command(c) for c in generate_commands(CATALOG, 2, 10)
    ]
    items += [decode_cdr(line) for line in generate_cdrs(CATALOG, 20, 400, 2, 10, faults)]
    items.sort(
        key=lambda i: (
            0
            if isinstance(i, Rejected)
            else (i.started_at if isinstance(i, Cdr) else i.at).timestamp()
        )
    )
    pipeline, totals = Pipeline(CATALOG), Totals()
    for item in items:
        if isinstance(item, Rejected):
            pipeline.reject(item)
            continue
        result = pipeline.feed(item)
        for event in [] if isinstance(result, Rejected) else result:
            totals.observe(event)
    return pipeline, totals, len(items)


def summary_of(pipeline: Pipeline, totals: Totals, inputs: int) -> Summary:
    return summarize(CATALOG, pipeline.states, totals, inputs, pipeline.rated, pipeline.rejected)


def test_a_run_balances_and_every_wallet_reconciles() -> None:
    pipeline, totals, inputs = run()
    summary = summary_of(pipeline, totals, inputs)
    assert (summary.inputs, summary.rated) == (inputs, pipeline.rated) and summary.rated > 0
    assert summary.balanced and all(w.reconciled for w in summary.wallets)
    assert sum(summary.revenue.values()) == sum(summary.charges.values())
    assert [w.wallet_id for w in summary.wallets] == sorted(pipeline.states)


def test_a_stray_revenue_line_is_reported_as_not_balanced() -> None:
    pipeline, totals, inputs = run()
    totals.revenue["nobody"] += 1
    summary = summary_of(pipeline, totals, inputs)
    assert not summary.balanced
    assert render(summary, CATALOG).endswith("money balances to the micro-unit: NO (see wallets)")


def test_the_report_counts_inputs_and_each_rejection_reason() -> None:
    pipeline, totals, inputs = run(faults=0.05)
    summary = summary_of(pipeline, totals, inputs)
    rejected: Counter[str] = pipeline.rejected
    assert sum(rejected.values()) > 0
    lines = render(summary, CATALOG).splitlines()
    total = sum(rejected.values())
    assert lines[0] == f"inputs {inputs:,}   rated CDRs {summary.rated:,}   rejected {total:,}"
    assert [line.split()[1] for line in lines[1 : 1 + len(rejected)]] == sorted(rejected)


def test_a_wallet_opened_by_command_reports_its_own_currency_and_closing() -> None:
    at = datetime(2026, 9, 1, tzinfo=UTC)
    pipeline, totals = Pipeline(CATALOG), Totals()
    for item in (
        OpenWallet(command_id="o1", wallet_id="new", at=at, currency="USD"),
        TopUp(command_id="t1", wallet_id="new", at=at, amount="5", currency="USD"),
        CloseWallet(command_id="x1", wallet_id="new", at=at, reason="done"),
    ):
        result = pipeline.feed(item)
        assert not isinstance(result, Rejected)
        for event in result:
            totals.observe(event)
    summary = summarize(CATALOG, pipeline.states, totals, 3, 0, Counter())
    row = next(w for w in summary.wallets if w.wallet_id == "new")
    assert (row.currency, row.status, row.balance, row.reconciled) == (
        "USD",
        "closed",
        5_000_000,
        True,
    )
