"""The codec never raises on what arrives from the wire: it decodes or it rejects."""

from __future__ import annotations

import base64
import hashlib
import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.codec import (
    MAX_DEPTH,
    MAX_INPUT_BYTES,
    RENAMED,
    Rejected,
    _flat,
    _UncheckedDecision,
    current_type,
    decode_cdr,
    decode_decision,
    decode_event,
    encode,
    fit,
    read_command,
    tag,
    upcast,
)
from engine.domain import EVENT_TYPES, Cdr
from engine.domain.decision import Decision
from engine.domain.events import SimsBarred, SimsUnbarred

GOOD = {
    "cdr_id": "c1",
    "iccid": "89441000000000900002",
    "service": "data",
    "started_at": "2026-09-10T14:05:00+02:00",
    "volume": 1234,
    "mcc": "262",
    "mnc": "01",
}
TICK = {"type": "Tick", "command_id": "t1", "wallet_id": "acme", "at": "2026-09-10T00:00:00Z"}


def deep(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


@pytest.mark.parametrize("raw", [deep(2000), b"[" * 50_000, b'{"cdr_id":' + b"[" * 5000])
def test_deep_nesting_is_rejected_before_parsing(raw: bytes) -> None:
    rejected = decode_cdr(raw, "f:1")
    assert isinstance(rejected, Rejected) and rejected.reason == "too_deep"
    command = read_command(raw, "f:1")
    assert isinstance(command, Rejected) and command.reason == "too_deep"


BRACKETS = st.lists(st.sampled_from([b"{", b"[", b"}", b"]", b'"', b"a", b"\\"])).map(b"".join)


@given(st.binary(max_size=300) | BRACKETS)
def test_a_flat_record_has_no_array_and_one_object_at_most(raw: bytes) -> None:
    # decode_cdr screens, and the screen counts, only a record that is not flat: a flat one
    # has one bracket at most, far below MAX_DEPTH, so the counts could not have stopped it.
    assert _flat(raw) == (b"[" not in raw and b"{" not in raw[1:])
    if _flat(raw):
        assert raw.count(b"[") + raw.count(b"{") <= 1


def test_a_record_just_over_the_depth_is_screened_and_one_at_it_is_parsed() -> None:
    over = decode_cdr(deep(MAX_DEPTH + 1))
    assert isinstance(over, Rejected) and over.reason == "too_deep"
    at_limit = decode_cdr(deep(MAX_DEPTH))
    assert isinstance(at_limit, Rejected) and at_limit.reason != "too_deep"


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    raw = json.dumps({**GOOD, "apn": "[" * (MAX_DEPTH + 5)}).encode()
    assert isinstance(decode_cdr(raw), Cdr)


def test_an_oversized_record_is_rejected_with_a_prefix_its_length_and_hash() -> None:
    raw = bytes(range(256)) * (900_000 // 256)
    rejected = decode_cdr(raw, "cdr.raw/0@7")
    assert isinstance(rejected, Rejected) and rejected.reason == "too_large"
    assert rejected.raw_length == len(raw) > MAX_INPUT_BYTES
    assert rejected.raw_sha256 == hashlib.sha256(raw).hexdigest()
    kept = base64.b64decode(rejected.raw_base64 or "")
    assert raw.startswith(kept) and 0 < len(kept) < len(raw)
    assert len(encode(rejected)) < 64 * 1024


def test_fit_keeps_a_rejection_that_fits_as_it_is_and_cuts_one_that_does_not() -> None:
    small = Rejected("malformed", "x", "f:1", raw="abc")
    assert fit(small) is small
    text = "é" * 10_000
    cut = fit(Rejected("malformed", "x" * 50_000, "f:1", raw=text), 8_000)
    assert len(encode(cut)) <= 8_000
    assert cut.raw is not None and text.startswith(cut.raw)
    assert cut.raw_length == len(text.encode()) and cut.raw_sha256 is not None


@pytest.mark.parametrize("field", ["cdr_id", "iccid", "source", "apn"])
def test_control_characters_in_identifiers_are_rejected_at_decode(field: str) -> None:
    raw = json.dumps({**GOOD, field: "a\u0000b"}).encode()
    rejected = decode_cdr(raw)
    assert isinstance(rejected, Rejected) and rejected.reason == "invalid_field"
    assert field in rejected.detail


@pytest.mark.parametrize("field", ["command_id", "wallet_id"])
def test_control_characters_in_command_ids_are_rejected(field: str) -> None:
    raw = json.dumps({**TICK, field: "acme\u001b[2J"}).encode()
    rejected = read_command(raw)
    assert isinstance(rejected, Rejected) and rejected.reason == "malformed_command"


@settings(max_examples=300)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert isinstance(decode_cdr(raw), Cdr | Rejected)
    read_command(raw)


def typed_answer(raw: bytes) -> Cdr | str:
    """What ``Cdr``'s own decoder makes of ``raw``: the record, or its error's text."""
    try:
        return msgspec.json.Decoder(Cdr).decode(raw)
    except msgspec.MsgspecError as exc:
        return str(exc)


# Strings near every constraint of a CDR: control characters (a trailing newline too, which
# the patterns' ``$`` lets through), other non-printable and non-ASCII characters, digits
# that are not ASCII, lengths at and past the limits, and ordinary values.
edgy = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789\n\x00\x7f\x85\xa0\u2028\u0663\uff10²é", max_size=5),
    st.sampled_from(["", "2", "262", "01", "2620", "26\n", "262\n", "x" * 32, "x" * 33]),
    st.sampled_from(["x" * 256, "x" * 257, "a\u2028b", "a\tb", "c1"]),
)
instants = st.sampled_from(
    ["2026-09-10T14:05:00+02:00", "2026-09-10T14:05:00Z", "2026-09-10T14:05:00", "nope"]
)
cdr_fields = st.fixed_dictionaries(
    {},
    optional={
        "cdr_id": edgy,
        "iccid": edgy,
        "service": st.sampled_from(["data", "sms", "fax"]),
        "started_at": instants,
        "volume": st.one_of(st.integers(-5, 2**70), st.just("1")),
        "mcc": edgy,
        "mnc": edgy,
        "apn": st.one_of(st.none(), edgy),
        "rat": st.sampled_from([None, "4G", "6G"]),
        "duration_s": st.one_of(st.none(), st.integers(0, 10)),
        "source": st.one_of(st.none(), edgy),
        "extra": st.integers(),
    },
)


@settings(max_examples=1000)
@given(st.just(GOOD), cdr_fields)
def test_a_cdr_decodes_exactly_as_its_typed_decoder_says(base: dict, fields: dict) -> None:
    """The fast path (fields decoded unchecked, then string tests) never answers otherwise
    than ``Cdr``'s own decoder: the same record, or a rejection with its error."""
    raw = json.dumps({**base, **fields}).encode()
    answer, got = typed_answer(raw), decode_cdr(raw)
    if isinstance(answer, str):
        assert isinstance(got, Rejected) and got.detail == answer
    elif answer.volume < 0:
        assert isinstance(got, Rejected) and got.reason == "negative_volume"
    else:
        assert got == answer and type(got) is Cdr
        assert got.started_at.utcoffset() == answer.started_at.utcoffset()


EDGES = [
    *[(f, v) for f in ("cdr_id", "iccid", "apn", "source") for v in ("", "a\nb", "ab\n", "\x85")],
    *[(f, v) for f in ("cdr_id", "apn", "source") for v in ("x" * 256, "x" * 257, "é" * 256)],
    ("iccid", "8" * 32),
    ("iccid", "8" * 33),
    *[(f, v) for f in ("mcc", "mnc") for v in ("1", "12", "123", "1234", "12\n", "١٢٣", "12a")],
    ("started_at", "2026-09-10T14:05:00"),
    ("started_at", "2026-09-10T14:05:00Z"),
    ("apn", None),
    ("source", None),
]


@pytest.mark.parametrize(("field", "value"), EDGES)
def test_each_constraint_of_a_cdr_at_its_edges(field: str, value: str | None) -> None:
    raw = json.dumps({**GOOD, field: value}).encode()
    answer, got = typed_answer(raw), decode_cdr(raw)
    assert got == answer if isinstance(answer, Cdr) else getattr(got, "detail", None) == answer


BARRED = (
    b'{"type":"BarSims","id":"cmd:t#5","wallet_id":"w","at":"2026-11-01T00:00:00Z",'
    b'"iccids":["8944"]}'
)


def test_an_event_stored_under_a_former_name_decodes_as_the_renamed_one() -> None:
    event = decode_event(BARRED)
    assert isinstance(event, SimsBarred)
    assert event.iccids == ("8944",)
    assert encode(event) == BARRED.replace(b"BarSims", b"SimsBarred")
    unbarred = decode_event(BARRED.replace(b"BarSims", b"UnbarSims"))
    assert isinstance(unbarred, SimsUnbarred)


def test_every_former_name_reads_as_a_current_event() -> None:
    assert RENAMED == {"BarSims": "SimsBarred", "UnbarSims": "SimsUnbarred"}
    current = {tag(t) for t in EVENT_TYPES}
    assert set(RENAMED.values()) <= current
    assert not set(RENAMED) & current
    assert all(current_type(old) == new for old, new in RENAMED.items())
    assert current_type("UsageRated") == "UsageRated"


def test_upcast_renames_only_type_tags() -> None:
    # A text that names a former event (a detail, an id) is data, not a tag: its quotes
    # are escaped inside the JSON string, so it stays as it is.
    text = json.dumps({"detail": '{"type":"BarSims"}', "id": "BarSims"}).encode()
    assert upcast(text) == text
    spaced = b'{"type" : "UnbarSims", "x": 1}'
    assert upcast(spaced) == b'{"type" : "SimsUnbarred", "x": 1}'
    assert upcast(BARRED.replace(b"BarSims", b"SimsBarred")) == BARRED.replace(
        b"BarSims", b"SimsBarred"
    )


def test_a_decision_holding_former_names_decodes() -> None:
    raw = (
        b'{"wallet_id":"w","input":"cmd:t","origin_topic":"wallet.commands",'
        b'"origin_partition":0,"origin_offset":3,"events":[' + BARRED + b"]}"
    )
    (event,) = decode_decision(raw).events
    assert isinstance(event, SimsBarred)


def typed_decision(raw: bytes) -> Decision | str:
    """What ``Decision``'s own decoder makes of ``raw``, read again with former event names
    upcast when it refuses it: the record, or its error's text."""
    decoder = msgspec.json.Decoder(Decision)
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError:
        pass
    except msgspec.MsgspecError as exc:
        return str(exc)
    try:
        return decoder.decode(upcast(raw))
    except msgspec.MsgspecError as exc:
        return str(exc)


TOP_UP = {
    "type": "TopUp",
    "command_id": "t1",
    "wallet_id": "w",
    "at": "2026-11-01T00:00:00Z",
    "amount": "5",
    "currency": "EUR",
}


def _decision(**fields: object) -> bytes:
    record = {
        "wallet_id": "w",
        "input": "cdr:c1",
        "origin_topic": "cdr.raw",
        "origin_partition": 0,
        "origin_offset": 3,
        "events": [],
        **fields,
    }
    return json.dumps(record).encode()


@settings(max_examples=500)
@given(
    cdr_fields,
    st.sampled_from([None, TOP_UP, {**TOP_UP, "wallet_id": ""}]),
    st.sampled_from([[], [json.loads(BARRED)]]),
    st.sampled_from([None, 0, 7, "7"]),
)
def test_a_decision_decodes_exactly_as_its_typed_decoder_says(
    fields: dict, command: dict | None, events: list, revision: object
) -> None:
    """The sink's and recovery's read (its CDR decoded unchecked, then the string tests)
    never answers otherwise than ``Decision``'s own decoder: the same record, or its error;
    events stored under a former name included."""
    extra = {} if revision is None else {"revision": revision}
    raw = _decision(cdr={**GOOD, **fields}, command=command, events=events, **extra)
    answer = typed_decision(raw)
    try:
        got: Decision | str = decode_decision(raw)
    except msgspec.MsgspecError as exc:
        got = str(exc)
    assert got == answer
    if isinstance(got, Decision) and isinstance(answer, Decision) and got.cdr and answer.cdr:
        assert type(got.cdr) is Cdr
        assert got.cdr.started_at.utcoffset() == answer.cdr.started_at.utcoffset()


def test_a_decision_with_former_names_and_a_cdr_the_string_tests_refuse_still_decodes() -> None:
    odd = {**GOOD, "cdr_id": "c\u2028"}  # printable to Cdr's pattern, not to the string tests
    raw = _decision(events=[json.loads(BARRED)], cdr=odd)
    decision = decode_decision(raw)
    assert isinstance(decision.events[0], SimsBarred)
    assert decision.cdr == typed_decision(raw.replace(b"BarSims", b"SimsBarred")).cdr  # type: ignore[union-attr]


def test_the_unchecked_decision_keeps_the_fields_of_a_decision_in_their_places() -> None:
    assert _UncheckedDecision.__struct_fields__ == Decision.__struct_fields__
    assert [f.default for f in msgspec.structs.fields(_UncheckedDecision)] == [
        f.default for f in msgspec.structs.fields(Decision)
    ]


def test_an_event_invalid_for_another_reason_is_refused_as_before() -> None:
    bad = BARRED.replace(b'"iccids":["8944"]', b'"iccids":3')
    with pytest.raises(msgspec.ValidationError, match="iccids"):
        decode_event(bad)
    with pytest.raises(msgspec.ValidationError, match="Invalid value 'Barred'"):
        decode_event(BARRED.replace(b"BarSims", b"Barred"))
