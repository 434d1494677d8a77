"""Where the SIMs of a ``sim`` verb come from: one ICCID, an inclusive range of them, or a
file with one SIM a row (CSV with a header, or JSON Lines), each read into the same `Row`.

A file is read whole and checked before anything is sent: every bad row is reported with
its ``file:line``, so the whole file can be fixed in one go."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

from ..offline.inputs import InputError
from .args import UsageError
from .sending import refuse_file

MAX_RANGE = 1_000_000
"""The most ICCIDs one ``--range`` may name: a larger one is more likely a typing mistake
(a digit too many) than a batch of SIMs, and can be split."""

LIST_COLUMNS = frozenset({"addons"})
"""Columns holding a list: a JSON array, or in CSV names separated by ``;`` or spaces."""

Value = str | tuple[str, ...] | None


class Row(NamedTuple):
    """One SIM's columns, and where it was read (``file:line``, or the flag it came from)."""

    origin: str
    fields: dict[str, Value]


def iccid_range(text: str, maximum: int = MAX_RANGE) -> list[str]:
    """``FIRST-LAST``: every ICCID from FIRST to LAST included, numeric and of one length
    (so each keeps its leading digits as written); refused when reversed or over
    ``maximum`` ICCIDs."""
    first, dash, last = text.partition("-")
    first, last = first.strip(), last.strip()
    if not (dash and _numeric(first) and _numeric(last)):
        raise UsageError(f"--range {text!r}: expected FIRST-LAST, two numeric ICCIDs")
    if len(first) != len(last):
        raise UsageError(
            f"--range {text}: {first} has {len(first)} digits and {last} {len(last)}; "
            "a range is of ICCIDs of one length"
        )
    low, high = int(first), int(last)
    if high < low:
        raise UsageError(f"--range {text}: {last} comes before {first}")
    count = high - low + 1
    if count > maximum:
        raise UsageError(
            f"--range {text}: {count:,} ICCIDs, more than {maximum:,} in one call; split it"
        )
    width = len(first)
    return [str(n).zfill(width) for n in range(low, high + 1)]


def _numeric(text: str) -> bool:
    return text.isascii() and text.isdigit()


def read_rows(path: Path, columns: Mapping[str, bool]) -> list[Row]:
    """Every row of ``path`` (``columns``: name -> required); `InputError` listing each
    bad row when any is. CSV unless the file ends in .jsonl/.ndjson/.json or starts with
    ``{``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    json_lines = path.suffix.lower() in (".jsonl", ".ndjson", ".json") or (text.lstrip()[:1] == "{")
    read = _json_rows if json_lines else _csv_rows
    rows: list[Row] = []
    bad: list[str] = []
    for line, fields in read(text, path, columns, bad):
        origin = f"{path}:{line}"
        problem = _problem(fields, columns)
        if problem is None:
            rows.append(Row(origin, fields))
        else:
            bad.append(f"{origin}: {problem}")
    refuse_file(bad)
    if not rows:
        raise InputError(f"{path}: no SIM in the file")
    return rows


def _problem(fields: dict[str, Value], columns: Mapping[str, bool]) -> str | None:
    unknown = sorted(set(fields) - set(columns))
    if unknown:
        return _unknown(unknown, columns)
    missing = [name for name, required in columns.items() if required and not fields.get(name)]
    if missing:
        return f"missing {', '.join(missing)}"
    return None


def _unknown(names: list[str], columns: Mapping[str, bool]) -> str:
    return f"unknown column(s) {', '.join(names)} (expected: {', '.join(columns)})"


def _csv_rows(
    text: str, path: Path, columns: Mapping[str, bool], bad: list[str]
) -> Iterator[tuple[int, dict[str, Value]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        bad.append(f"{path}:1: {exc}")
        return
    if len(set(header)) != len(header) or not all(header):
        bad.append(f"{path}:1: the header needs distinct, non-empty column names: {header}")
        return
    unknown = [name for name in header if name not in columns]
    if unknown:  # said once, of the header, rather than of every row
        bad.append(f"{path}:1: {_unknown(unknown, columns)}")
        return
    line = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            bad.append(f"{path}:{reader.line_num}: {exc}")
            return
        line, start = reader.line_num, line + 1
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            bad.append(f"{path}:{start}: {len(cells)} cells for {len(header)} columns")
            continue
        yield start, {name: _cell(name, cell) for name, cell in zip(header, cells, strict=True)}


def _cell(name: str, cell: str) -> Value:
    value = cell.strip()
    if name in LIST_COLUMNS:
        return tuple(part for part in value.replace(";", " ").split() if part)
    return value or None


def _json_rows(
    text: str, path: Path, _columns: Mapping[str, bool], bad: list[str]
) -> Iterator[tuple[int, dict[str, Value]]]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            bad.append(f"{path}:{number}: not JSON: {exc}")
            continue
        if not isinstance(item, dict):
            bad.append(f"{path}:{number}: expected a JSON object, one SIM a line")
            continue
        fields: dict[str, Value] = {}
        for name, value in item.items():
            if name in LIST_COLUMNS and isinstance(value, list):
                if not all(isinstance(v, str) for v in value):
                    bad.append(f"{path}:{number}: {name} must be a list of strings")
                    break
                fields[name] = tuple(value)
            elif value is None or isinstance(value, str):
                fields[name] = value or None
            else:
                # An ICCID as a JSON number would lose digits past 2^53 in many tools.
                bad.append(f"{path}:{number}: {name} must be a string, got {value!r}")
                break
        else:
            yield number, fields
