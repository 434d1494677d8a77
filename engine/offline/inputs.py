"""Reading CDR and command files (JSON lines) and merging them in time order."""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from pathlib import Path

import msgspec

from ..codec import Rejected, decode_cdr, raw_fields, read_command
from ..domain import Cdr, Command


class InputError(Exception):
    """A file that cannot be read at all (missing, unreadable)."""


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    for number, _, line in _placed_lines(path):
        yield number, line


def _placed_lines(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """``(line number, byte offset, stripped line)`` of every non-blank line."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    with handle:
        offset = 0
        for number, line in enumerate(handle, 1):
            start, offset = offset, offset + len(line)
            line = line.strip()
            if line:
                yield number, start, line


def read_cdrs(path: Path) -> Iterator[Cdr | Rejected]:
    """Every line as a CDR, or a rejection naming ``file:line``."""
    for number, raw in _lines(path):
        yield decode_cdr(raw, f"{path}:{number}")


class Origins:
    """Where each merged CDR came from (line number and byte offset in its file), kept as
    two compact arrays, so a CDR rejected after decoding (``unknown_sim``) is reported with
    its original bytes and ``file:line`` like one that did not decode."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = array("q")
        self.offsets = array("q")

    def evidence(self, index: int, rejection: Rejected) -> Rejected:
        """``rejection`` with the original line and ``file:line`` of merged input ``index``
        (unchanged for a command, or one that already carries its bytes)."""
        line = self.lines[index]
        if line < 0 or rejection.raw is not None or rejection.raw_base64 is not None:
            return rejection
        with self.path.open("rb") as handle:
            handle.seek(self.offsets[index])
            raw = handle.readline().strip()
        return msgspec.structs.replace(rejection, origin=f"{self.path}:{line}", **raw_fields(raw))


def read_commands(path: Path) -> Iterator[Command | Rejected]:
    for number, raw in _lines(path):
        yield read_command(raw, f"{path}:{number}")


def merged(cdrs: Path, commands: Path | None) -> tuple[list[Cdr | Command], list[Rejected]]:
    """All inputs in time order (commands first at the same instant, else file order), and
    the lines that did not decode."""
    items, bad, _ = merged_with_origins(cdrs, commands)
    return items, bad


def merged_with_origins(
    cdrs: Path, commands: Path | None
) -> tuple[list[Cdr | Command], list[Rejected], Origins]:
    """`merged`, and where each CDR of the result came from."""
    keyed: list[tuple[float, int, int, Cdr | Command]] = []
    bad: list[Rejected] = []
    sources = [(0, read_commands(commands))] if commands is not None else []
    placed: list[tuple[int, int]] = []  # (line, offset) of each CDR line, by its seq

    def cdr_lines() -> Iterator[Cdr | Rejected]:
        for number, offset, raw in _placed_lines(cdrs):
            placed.append((number, offset))
            yield decode_cdr(raw, f"{cdrs}:{number}")

    sources.append((1, cdr_lines()))  # type: ignore[arg-type]
    for rank, items in sources:
        for seq, item in enumerate(items):
            if isinstance(item, Rejected):
                bad.append(item)
            else:
                at = item.started_at if isinstance(item, Cdr) else item.at
                keyed.append((at.timestamp(), rank, seq, item))
    keyed.sort(key=lambda k: k[:3])
    origins = Origins(cdrs)
    for _, rank, seq, _item in keyed:
        line, offset = placed[seq] if rank == 1 else (-1, -1)
        origins.lines.append(line)
        origins.offsets.append(offset)
    return [k[3] for k in keyed], bad, origins
