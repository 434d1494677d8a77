"""`rating-engine rate` / `generate` / `catalog check` as a user runs them."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from engine.cli import main

REPO = Path(__file__).resolve().parents[2]
CATALOG = str(REPO / "examples" / "catalog.yaml")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("gen")
    cdrs, cmds = out / "cdrs.jsonl", out / "cmds.jsonl"
    code = main(
        [
            "generate",
            "--catalog",
            CATALOG,
            "--sims",
            "400",
            "--cdrs",
            "6000",
            "--seed",
            "3",
            "--faults",
            "0.02",
            "--out",
            str(cdrs),
            "--commands-out",
            str(cmds),
        ]
    )
    assert code == 0
    return cdrs, cmds


def _summary(capsys: pytest.CaptureFixture[str], args: list[str]) -> dict:  # type: ignore[type-arg]
    assert main(args) == 0
    return msgspec.json.decode(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_generate_is_deterministic(tmp_path: Path, generated: tuple[Path, Path]) -> None:
    again = tmp_path / "again.jsonl"
    args = ["generate", "--catalog", CATALOG, "--sims", "400", "--cdrs", "6000", "--seed", "3"]
    assert main([*args, "--faults", "0.02", "--out", str(again)]) == 0
    assert again.read_bytes() == generated[0].read_bytes()
    other = tmp_path / "other.jsonl"
    assert main([*args[:-1], "4", "--faults", "0.02", "--out", str(other)]) == 0
    assert other.read_bytes() != generated[0].read_bytes()


def test_rate_summary_balances_and_counts_everything(
    capsys: pytest.CaptureFixture[str], generated: tuple[Path, Path], tmp_path: Path
) -> None:
    cdrs, cmds = generated
    events_out = tmp_path / "events.jsonl"
    rejected_out = tmp_path / "rejected.jsonl"
    summary = _summary(
        capsys,
        [
            "rate",
            "--catalog",
            CATALOG,
            "--input",
            str(cdrs),
            "--commands",
            str(cmds),
            "--events-out",
            str(events_out),
            "--rejected-out",
            str(rejected_out),
            "--json",
        ],
    )
    lines = [line for line in cdrs.read_bytes().splitlines() if line.strip()]
    commands = cmds.read_bytes().splitlines()
    assert summary["inputs"] == len(lines) + len(commands)
    assert summary["balanced"] is True
    assert all(w["reconciled"] for w in summary["wallets"])
    # Every CDR line is either rated or rejected with a reason: nothing is lost.
    cdr_rejections = sum(
        n for reason, n in summary["rejected"].items() if reason != "malformed_command"
    )
    assert summary["rated"] + cdr_rejections == len(lines)
    for reason in ("malformed", "missing_field", "negative_volume", "unknown_sim", "duplicate"):
        assert summary["rejected"].get(reason, 0) > 0, reason
    # Revenue lines add up to the charges, to the micro-unit.
    assert sum(summary["revenue"].values()) == sum(
        v for k, v in summary["charges"].items() if k != "routed_usage"
    )
    events = [msgspec.json.decode(line) for line in events_out.read_bytes().splitlines()]
    rated = [e for e in events if e["type"] == "UsageRated"]
    assert len(rated) == summary["rated"]
    assert len({e["id"] for e in events}) == len(events), "event ids are unique"
    rejected = [msgspec.json.decode(line) for line in rejected_out.read_bytes().splitlines()]
    malformed = [r for r in rejected if r["reason"] == "malformed"]
    assert malformed and all(r["origin"].startswith(str(cdrs) + ":") for r in malformed)
    assert all("raw" in r or "raw_base64" in r for r in malformed)


def test_rate_is_byte_identical_across_runs(
    capsys: pytest.CaptureFixture[str], generated: tuple[Path, Path], tmp_path: Path
) -> None:
    cdrs, cmds = generated
    outs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.jsonl"
        args = ["rate", "--catalog", CATALOG, "--input", str(cdrs), "--commands", str(cmds)]
        assert main([*args, "--events-out", str(out), "--json"]) == 0
        capsys.readouterr()
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_text_summary_is_readable(
    capsys: pytest.CaptureFixture[str], generated: tuple[Path, Path]
) -> None:
    cdrs, cmds = generated
    assert main(["rate", "--catalog", CATALOG, "--input", str(cdrs), "--commands", str(cmds)]) == 0
    text = capsys.readouterr().out
    assert "money balances to the micro-unit: yes" in text
    assert "revenue by provider" in text
    for wallet in ("acme", "globex", "initech", "umbrella"):
        assert wallet in text


def test_malformed_lines_name_their_line_number(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cdrs = tmp_path / "bad.jsonl"
    good = (
        '{"cdr_id":"1","iccid":"89441000000000100000","service":"sms",'
        '"started_at":"2026-09-02T10:00:00Z","volume":1,"mcc":"262","mnc":"01"}'
    )
    cdrs.write_text(f'{good}\nnot json\n\n{{"cdr_id": "5"}}\n')
    rejected = tmp_path / "rejected.jsonl"
    summary = _summary(
        capsys,
        [
            "rate",
            "--catalog",
            CATALOG,
            "--input",
            str(cdrs),
            "--rejected-out",
            str(rejected),
            "--json",
        ],
    )
    assert summary["rated"] == 1
    records = [msgspec.json.decode(line) for line in rejected.read_bytes().splitlines()]
    assert [(r["reason"], r["origin"]) for r in records] == [
        ("malformed", f"{cdrs}:2"),
        ("missing_field", f"{cdrs}:4"),
    ]
    assert records[0]["raw"] == "not json"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["rate"],
        ["rate", "--catalog", CATALOG],
        ["generate", "--sims", "x", "--cdrs", "1"],
        ["no-such-command"],
    ],
)
def test_misuse_prints_usage_and_exits_2(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_missing_input_file_is_a_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["rate", "--catalog", CATALOG, "--input", str(tmp_path / "nope.jsonl")])
    assert code == 1
    err = capsys.readouterr().err
    assert "nope.jsonl" in err and "Traceback" not in err


def test_bad_catalog_lists_every_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    text = Path(CATALOG).read_text()
    text = text.replace('EU: {price: "0.0195", per: MB}', 'EUX: {price: "0,0195", per: MB}', 1)
    broken.write_text(text)
    assert main(["catalog", "check", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "plans[0].versions[0].rates.data.EUX" in err
    assert "0,0195" in err
    assert "Traceback" not in err


def test_catalog_check_summarizes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "check", CATALOG]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "wallets" in out


def test_too_many_sims_is_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "--catalog", CATALOG, "--sims", "99999999", "--cdrs", "1"])
    assert code == 1
    assert "SIMs" in capsys.readouterr().err


def test_an_unknown_sim_keeps_its_bytes_and_file_line_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    known = (
        b'{"cdr_id":"k1","iccid":"89441000000000100039","service":"sms",'
        b'"started_at":"2026-09-10T12:00:00Z","volume":1,"mcc":"262","mnc":"01"}'
    )
    unknown = (
        b'{"cdr_id": "u1", "iccid": "89999999999999999999", "service": "data",'
        b' "started_at": "2026-09-10T11:00:00Z", "volume": 5, "mcc": "262", "mnc": "01"}'
    )
    cdrs, rejected = tmp_path / "cdrs.jsonl", tmp_path / "rejected.jsonl"
    # line 3, after a blank line, and earlier in time than line 1: merged order differs
    cdrs.write_bytes(known + b"\n\n" + unknown + b"\n")
    args = ["rate", "--catalog", CATALOG, "--input", str(cdrs), "--json"]
    assert main([*args, "--rejected-out", str(rejected)]) == 0
    capsys.readouterr()
    (record,) = [msgspec.json.decode(line) for line in rejected.read_bytes().splitlines()]
    assert record["reason"] == "unknown_sim"
    assert record["origin"] == f"{cdrs}:3"
    assert record["raw"].encode() == unknown
