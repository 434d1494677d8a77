"""Enrich on a real broker: a SIM provisioned by command is routed by the shared directory,
a CDR that races its SIM's attach is held until the route arrives, a move sends each CDR to
the wallet the SIM was in at its start, and a CDR whose SIM never arrives is rejected as
``unknown_sim`` with its bytes and origin once its hold runs out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import msgspec
import pytest

from engine.domain.commands import AttachSim, DetachSim
from engine.stream.enricher import Enricher

from .harness import Stack, events_by_wallet, read_topic, wait_until

NEW = "89441000000000999001"
NEVER = "89441000000000999002"
T = "2026-09-10T10:00:00Z"


def _cdr(cdr_id: str, iccid: str, at: str) -> dict[str, object]:
    return {
        "cdr_id": cdr_id,
        "iccid": iccid,
        "service": "data",
        "started_at": at,
        "volume": 1_000_000,
        "mcc": "262",
        "mnc": "01",
    }


def _write(path: Path, *records: object) -> Path:
    path.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in records))
    return path


def _rated(stack: Stack) -> dict[str, list[str]]:
    """CDR id -> the wallets that rated it."""
    decisions = read_topic(stack.bootstrap, stack.topics.wallet_events.name, quiet=1.5)
    out: dict[str, list[str]] = {}
    for wallet, events in events_by_wallet(decisions).items():
        for raw in events:
            event = msgspec.json.decode(raw)
            if event["type"] == "UsageRated":
                out.setdefault(event["cdr_id"], []).append(wallet)
    return out


@pytest.fixture
def stack(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(kafka_bootstrap, tmp_path)
    s.env["RATING_HOLD_UNKNOWN"] = "15"
    yield s
    s.local.stop()


def test_cdrs_racing_their_sims_attach_and_move_are_rated_where_the_sim_was(
    stack: Stack, tmp_path: Path
) -> None:
    assert Enricher.batch  # the stage under test
    stack.start_worker()
    # The CDRs first: no route covers NEW yet, so enrich holds them.
    cdrs = _write(
        tmp_path / "early.jsonl",
        _cdr("race-1", NEW, T),
        _cdr("race-2", NEW, "2026-09-10T11:00:00Z"),
        _cdr("never-1", NEVER, T),
    )
    stack.cli("publish", "--input", str(cdrs), "--no-progress")
    commands = _write(
        tmp_path / "attach.jsonl",
        _command(AttachSim, "a1", "acme", "2026-09-10T09:00:00Z", iccid=NEW, plan="iot-eu"),
    )
    stack.cli("command", "--input", str(commands))
    wait_until(lambda: _rated(stack).get("race-2") == ["acme"], "the held CDRs to be rated")
    assert _rated(stack)["race-1"] == ["acme"]

    # A move: out of acme and into globex at noon; a CDR after it goes to globex, and one
    # from before it still goes to acme, whichever arrives first.
    move = _write(
        tmp_path / "move.jsonl",
        _command(DetachSim, "d1", "acme", "2026-09-10T12:00:00Z", iccid=NEW),
        _command(AttachSim, "a2", "globex", "2026-09-10T12:00:00Z", iccid=NEW, plan="iot-eu"),
    )
    stack.cli("command", "--input", str(move))
    wait_until(lambda: _routes_of(stack) >= 2, "both sides of the move in the directory")
    later = _write(
        tmp_path / "later.jsonl",
        _cdr("after-move", NEW, "2026-09-10T12:30:00Z"),
        _cdr("before-move", NEW, "2026-09-10T11:30:00Z"),
    )
    stack.cli("publish", "--input", str(later), "--no-progress")
    wait_until(lambda: "before-move" in _rated(stack), "the CDRs around the move")
    rated = _rated(stack)
    assert (rated["after-move"], rated["before-move"]) == (["globex"], ["acme"])

    # The SIM that never arrives: rejected at enrich once its hold ran out.
    def rejected() -> list[dict[str, object]]:
        records = read_topic(stack.bootstrap, stack.topics.cdr_rejected.name, quiet=1.0)
        return [msgspec.json.decode(r) for r in records]

    wait_until(lambda: len(rejected()) == 1, "the unknown SIM's rejection", timeout=90)
    (never,) = rejected()
    assert (never["reason"], never["cdr_id"], never["iccid"]) == ("unknown_sim", "never-1", NEVER)
    assert str(never["origin"]).startswith(stack.topics.cdr_raw.name + "/")
    assert msgspec.json.decode(str(never["raw"]))["cdr_id"] == "never-1"
    assert "never-1" not in _rated(stack)


def _command(kind: type, command_id: str, wallet: str, at: str, **fields: str) -> object:
    when = datetime.fromisoformat(at.replace("Z", "+00:00"))
    return msgspec.to_builtins(kind(command_id=command_id, wallet_id=wallet, at=when, **fields))


def _routes_of(stack: Stack) -> int:
    return len(read_topic(stack.bootstrap, stack.topics.wallet_directory.name, quiet=1.0))
