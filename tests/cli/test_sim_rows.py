"""Where a ``sim`` verb's SIMs come from: ICCID ranges and files (CSV, JSON Lines), and how a
bad one is refused before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli.args import UsageError
from engine.cli.sim_rows import MAX_RANGE, iccid_range, read_rows
from engine.offline.inputs import InputError

COLUMNS = {"iccid": True, "wallet": True, "plan": True, "pool": False, "addons": False, "at": False}


def test_a_range_is_inclusive_and_keeps_its_width() -> None:
    assert iccid_range("0890-0893") == ["0890", "0891", "0892", "0893"]
    assert iccid_range("8931000000000000009-8931000000000000010") == [
        "8931000000000000009",
        "8931000000000000010",
    ]
    assert iccid_range("55-55") == ["55"]
    assert len(iccid_range("8931000000-8931999999")) == MAX_RANGE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8931", "expected FIRST-LAST"),
        ("8931-", "expected FIRST-LAST"),
        ("89a1-8932", "expected FIRST-LAST"),
        ("-5-7", "expected FIRST-LAST"),
        ("٣-٤", "expected FIRST-LAST"),  # digits, but not ASCII ones
        ("999-1000", "999 has 3 digits and 1000 4"),
        ("8935-8931", "8931 comes before 8935"),
        ("1000000-2000000", "1,000,001 ICCIDs, more than 1,000,000"),
    ],
)
def test_a_bad_range_is_a_usage_error(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        iccid_range(text)


def test_csv_and_json_lines_read_alike(tmp_path: Path) -> None:
    csv = tmp_path / "sims.csv"
    csv.write_text(
        "iccid,wallet,plan,pool,addons\n"
        "8931001,acme,iot-eu,,\n"
        "\n"
        '8931002,acme,iot-eu,acme-eu,"sms; voice"\n'
    )
    jsonl = tmp_path / "sims.jsonl"
    jsonl.write_text(
        '{"iccid": "8931001", "wallet": "acme", "plan": "iot-eu"}\n'
        "\n"
        '{"iccid": "8931002", "wallet": "acme", "plan": "iot-eu", "pool": "acme-eu",'
        ' "addons": ["sms", "voice"]}\n'
    )
    from_csv, from_json = read_rows(csv, COLUMNS), read_rows(jsonl, COLUMNS)
    assert [r.origin for r in from_csv] == [f"{csv}:2", f"{csv}:4"]
    assert [r.origin for r in from_json] == [f"{jsonl}:1", f"{jsonl}:3"]
    assert (
        from_csv[1].fields
        == from_json[1].fields
        == {
            "iccid": "8931002",
            "wallet": "acme",
            "plan": "iot-eu",
            "pool": "acme-eu",
            "addons": ("sms", "voice"),
        }
    )
    assert from_csv[0].fields["pool"] is None and from_csv[0].fields["addons"] == ()


def test_a_file_with_bad_rows_names_each_and_sends_nothing(tmp_path: Path) -> None:
    path = tmp_path / "sims.csv"
    path.write_text(
        "iccid,wallet,plan\n8931001,acme,iot-eu\n8931002,,iot-eu\n8931003,acme\n8931004,a,b\n"
    )
    with pytest.raises(InputError) as refused:
        read_rows(path, COLUMNS)
    assert str(refused.value).splitlines() == [
        f"{path}:3: missing wallet",
        f"{path}:4: 2 cells for 3 columns",
        "nothing was sent",
    ]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.csv", "iccid,wallet,colour\n1,w,red\n", r":1: unknown column\(s\) colour"),
        ("a.jsonl", '{"iccid": "1", "colour": "red"}\n', r":1: unknown column\(s\) colour"),
        ("a.csv", "iccid,iccid\n1,2\n", ":1: the header needs distinct"),
        ("a.jsonl", '{"iccid": 8931, "wallet": "w", "plan": "p"}\n', "iccid must be a string"),
        ("a.jsonl", '["8931"]\n', "expected a JSON object"),
        ("a.jsonl", '{"iccid": \n', ":1: not JSON"),
        ("a.jsonl", '{"iccid": "1", "wallet": "w", "plan": "p", "addons": [1]}\n', "list of str"),
        ("a.csv", "iccid,wallet,plan\n", "no SIM in the file"),
        ("a.csv", "", "no SIM in the file"),
    ],
)
def test_file_mistakes_are_reported_with_their_line(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_rows(path, COLUMNS)


def test_a_missing_or_binary_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="No such file"):
        read_rows(tmp_path / "absent.csv", COLUMNS)
    binary = tmp_path / "sims.csv"
    binary.write_bytes(b"iccid\n\xff\xfe\n")
    with pytest.raises(InputError, match="not UTF-8"):
        read_rows(binary, COLUMNS)


def test_json_lines_are_recognised_by_content_too(tmp_path: Path) -> None:
    path = tmp_path / "sims.txt"
    path.write_text('{"iccid": "1", "wallet": "w", "plan": "p"}\n')
    assert read_rows(path, COLUMNS)[0].fields == {"iccid": "1", "wallet": "w", "plan": "p"}
