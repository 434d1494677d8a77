"""File inputs offline: every non-blank line is an input or a rejection naming ``file:line``;
CDRs and commands merged in time order; a CDR refused after decoding still reported with its
own bytes and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.codec import Rejected
from engine.domain import Cdr, Tick
from engine.offline.inputs import InputError, merged, merged_with_origins, read_cdrs

CDR = {
    "iccid": "8900000000000000001",
    "service": "data",
    "volume": 1024,
    "mcc": "262",
    "mnc": "01",
}


def cdr(cdr_id: str, at: str) -> str:
    return json.dumps({**CDR, "cdr_id": cdr_id, "started_at": at})


def tick(command_id: str, at: str) -> str:
    return json.dumps({"type": "Tick", "command_id": command_id, "wallet_id": "w1", "at": at})


def test_a_bad_line_is_a_rejection_naming_its_line_and_blank_lines_are_skipped(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cdrs.jsonl"
    path.write_text(cdr("c1", "2026-01-05T00:00:00Z") + "\n\n{not json\n")
    first, second = read_cdrs(path)
    assert isinstance(first, Cdr) and first.cdr_id == "c1"
    assert isinstance(second, Rejected)
    assert (second.origin, second.raw) == (f"{path}:3", "{not json")


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing\.jsonl"):
        list(read_cdrs(tmp_path / "missing.jsonl"))


def test_inputs_merge_in_time_order_commands_first_at_the_same_instant(tmp_path: Path) -> None:
    cdrs, commands = tmp_path / "cdrs.jsonl", tmp_path / "commands.jsonl"
    cdrs.write_text(
        "\n".join([cdr("late", "2026-01-05T10:00:00Z"), cdr("early", "2026-01-05T08:00:00Z"), "[]"])
    )
    commands.write_text(tick("t1", "2026-01-05T10:00:00Z") + "\n")
    items, bad = merged(cdrs, commands)
    assert [i.cdr_id if isinstance(i, Cdr) else i.command_id for i in items] == [
        "early",
        "t1",
        "late",
    ]
    assert isinstance(items[1], Tick)
    assert [r.origin for r in bad] == [f"{cdrs}:3"]


def test_a_cdr_refused_later_is_reported_with_its_own_line(tmp_path: Path) -> None:
    cdrs = tmp_path / "cdrs.jsonl"
    cdrs.write_text(
        "\n" + cdr("b", "2026-01-05T10:00:00Z") + "\n" + cdr("a", "2026-01-05T08:00:00Z") + "\n"
    )
    items, _, origins = merged_with_origins(cdrs, None)
    assert [i.cdr_id for i in items if isinstance(i, Cdr)] == ["a", "b"]
    later = origins.evidence(1, Rejected("unknown_sim", "not in any wallet"))
    assert later.origin == f"{cdrs}:2"
    assert later.raw is not None and json.loads(later.raw)["cdr_id"] == "b"
