"""``rating-engine rejected republish``: each record goes back where it came from, or is
counted with the reason it cannot."""

from __future__ import annotations

import base64

from engine.cli.rejected import by_origin
from engine.codec import Rejected
from engine.stream.rejected import RejectedRecord
from engine.stream.topics import REPO_TOPICS, load_topics

TOPICS = load_topics(REPO_TOPICS, environ={})
CDR = b'{"cdr_id": "c1", "iccid": "8931"}'
TICK = b'{"type": "Tick", "command_id": "t1", "wallet_id": "w", "at": "2026-10-01T00:00:00Z"}'


def _record(origin: str, raw: bytes | None = None, raw_base64: str | None = None) -> RejectedRecord:
    text = None if raw is None else raw.decode()
    return RejectedRecord(0, 0, Rejected("r", "d", origin, raw=text, raw_base64=raw_base64))


def test_records_go_back_to_their_origin_topic() -> None:
    raw, commands = TOPICS.cdr_raw.name, TOPICS.wallet_commands.name
    cdrs, sent, left = by_origin(
        [
            _record(f"{raw}/3@17", CDR),
            _record(f"{commands}/0@2", TICK),
            _record(f"{raw}/1@5", raw_base64=base64.b64encode(CDR).decode()),
        ],
        TOPICS,
    )
    assert cdrs == [CDR, CDR]
    assert [c.command_id for c in sent] == ["t1"]
    assert left == {}


def test_what_cannot_be_sent_as_it_is_is_counted_and_left() -> None:
    commands = TOPICS.wallet_commands.name
    cdrs, sent, left = by_origin(
        [
            _record(f"{TOPICS.cdr_raw.name}/0@1"),  # only a prefix kept
            _record(f"{commands}/0@3", b'{"type": "Tick"}'),
            _record("cdrs.jsonl:12", CDR),
            _record("elsewhere/0@1", CDR),
        ],
        TOPICS,
    )
    assert (cdrs, sent) == ([], [])
    assert left == {
        "not text, or only a prefix kept": 1,
        "a command that still does not decode: fix it, then `command --input`": 1,
        "origin 'cdrs.jsonl:12' is not a topic this engine reads": 1,
        "origin 'elsewhere/0@1' is not a topic this engine reads": 1,
    }
