"""`rating-engine rejected`: a rejected CDR is fixed at its cause and sent again, once.

A worker without a SIM in its catalog rejects that SIM's CDRs as ``unknown_sim`` (with their
bytes and origin); the SIM is provisioned (a worker with a catalog that has it); `republish`
sends the records back to ``cdr.raw`` and each is rated exactly once, however often it is
sent again.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from engine.codec import Rejected
from engine.stream.rejected import RejectedRecord, Tally, as_line, select

from .harness import CATALOG, Stack, read_topic

NEW_SIM = "89441000000000990001"


@pytest.fixture
def stack(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(kafka_bootstrap, tmp_path, raw_partitions=1)
    yield s
    s.stop_worker()


def _cdr(n: int, iccid: str) -> bytes:
    return msgspec.json.encode(
        {
            "cdr_id": f"rej-{n}",
            "iccid": iccid,
            "service": "data",
            "started_at": f"2026-09-10T12:{n:02d}:00Z",
            "volume": 100_000 + n,
            "mcc": "262",
            "mnc": "01",
        }
    )


def _listed(stack: Stack, *args: str) -> dict:  # type: ignore[type-arg]
    out = stack.cli("rejected", "list", "--json", *args).stdout
    return msgspec.json.decode(out)  # type: ignore[no-any-return]


def _rated(stack: Stack, cdr_ids: set[str], until: int) -> Counter[str]:
    """How often each of ``cdr_ids`` was rated (``UsageRated``) on ``wallet.events``."""
    deadline = time.monotonic() + 90
    while True:
        counts: Counter[str] = Counter()
        for raw in read_topic(stack.bootstrap, stack.topics.wallet_events.name, quiet=2.0):
            for event in msgspec.json.decode(raw)["events"]:
                if event["type"] == "UsageRated" and event["cdr_id"] in cdr_ids:
                    counts[event["cdr_id"]] += 1
        if sum(counts.values()) >= until or time.monotonic() > deadline:
            return counts


def test_a_rejected_cdr_is_sent_again_after_its_sim_is_provisioned(
    stack: Stack, tmp_path: Path
) -> None:
    unknown = [_cdr(n, NEW_SIM) for n in range(3)]
    known = [_cdr(n, "89441000000000100039") for n in range(3, 5)]
    cdrs = tmp_path / "cdrs.jsonl"
    cdrs.write_bytes(b"\n".join([*unknown, b'{"cdr_id": "broken"', *known]) + b"\n")

    stack.start_worker()
    stack.cli("publish", "--input", str(cdrs), "--no-progress")
    deadline = time.monotonic() + 90
    while (listed := _listed(stack))["tally"]["records"] < 4 and time.monotonic() < deadline:
        time.sleep(1)
    assert listed["tally"]["by_reason"] == {"unknown_sim": 3, "malformed": 1}
    first = listed["records"][0]["rejected"]
    assert first["origin"].startswith(f"{stack.topics.cdr_raw.name}/0@")

    # Exported as they arrived, ready to edit and publish.
    out = tmp_path / "exported.jsonl"
    stack.cli("rejected", "export", "--reason", "unknown_sim", "--out", str(out))
    assert out.read_bytes().splitlines() == unknown

    # The SIM is provisioned; the worker now knows it.
    stack.stop_worker()
    provisioned = tmp_path / "provisioned.yaml"
    provisioned.write_text(
        CATALOG.read_text().replace(
            "subscriptions:\n",
            "subscriptions:\n"
            f'  - iccid: "{NEW_SIM}"\n'
            "    wallet: acme\n"
            "    plan: iot-eu\n"
            '    active_from: "2026-08-01T00:00:00Z"\n',
            1,
        )
    )
    # A worker starts only on a published catalog revision: publish it first.
    stack.cli("catalog", "publish", str(provisioned), "--no-progress")
    stack.start_worker("--catalog", str(provisioned))

    dry = stack.cli("rejected", "republish", "--reason", "unknown_sim", "--dry-run")
    assert "3 CDRs and 0 commands to send again" in dry.stderr
    ids = {f"rej-{n}" for n in range(3)}
    assert _rated(stack, ids, 0) == Counter()  # a dry run sends nothing

    stack.cli("rejected", "republish", "--reason", "unknown_sim")
    assert _rated(stack, ids, 3) == Counter(dict.fromkeys(ids, 1))

    # Sent again (twice now): recognised as duplicates, never charged twice.
    stack.cli("rejected", "republish", "--reason", "unknown_sim")
    duplicates = 0
    deadline = time.monotonic() + 90
    while duplicates < 3 and time.monotonic() < deadline:
        duplicates = sum(
            1
            for raw in read_topic(stack.bootstrap, stack.topics.wallet_events.name, quiet=2.0)
            for event in msgspec.json.decode(raw)["events"]
            if event["type"] == "CdrRejected" and event["reason"] == "duplicate"
        )
    assert duplicates == 3
    assert _rated(stack, ids, 3) == Counter(dict.fromkeys(ids, 1))


def test_rejected_without_a_broker_is_a_clear_error(stack: Stack) -> None:
    result = stack.cli("rejected", "list", "--bootstrap", "127.0.0.1:1", check=False)
    assert result.returncode == 1
    assert "no Kafka broker answered" in result.stderr
    assert "Traceback" not in result.stderr


# -- without a broker: what a rejected record says, tallied and selected -----------------


def record(
    reason: str, origin: str, raw: str | None = None, b64: str | None = None
) -> RejectedRecord:
    return RejectedRecord(0, 0, Rejected(reason, "why", origin, raw=raw, raw_base64=b64))


def test_a_record_keeps_its_original_bytes_and_its_topic() -> None:
    from_stream = record("unknown_sim", "cdr.raw/3@1200", raw='{"cdr_id": "c1"}')
    assert from_stream.original == b'{"cdr_id": "c1"}'
    assert from_stream.origin_topic == "cdr.raw"
    binary = record("not_json", "cdr.raw/0@7", b64="AAEC")
    assert binary.original == b"\x00\x01\x02"
    offline = record("unknown_sim", "cdrs.jsonl:12")
    assert (offline.original, offline.origin_topic) == (None, None)


def test_records_are_tallied_by_reason_and_origin_and_selected_by_reason() -> None:
    records = [
        record("unknown_sim", "cdr.raw/0@1"),
        record("unknown_zone", "cdr.raw/1@2"),
        record("unknown_sim", "cdrs.jsonl:3"),
    ]
    tally = Tally.of(records)
    assert tally.records == 3
    assert tally.by_reason == {"unknown_sim": 2, "unknown_zone": 1}
    assert tally.by_origin == {"cdr.raw": 2, "(offline)": 1}
    assert list(select(records, ["unknown_zone"])) == [records[1]]
    assert list(select(records)) == records


def test_a_pretty_printed_record_becomes_one_line_and_binary_none() -> None:
    assert as_line(b'{\r\n  "a": 1\n}') == b'{   "a": 1 }'
    assert as_line(b"\xff\xfe") is None
