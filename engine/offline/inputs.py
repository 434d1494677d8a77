"""Reading CDR and command files (JSON lines) and merging them in time order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..codec import Rejected, decode_cdr, read_command
from ..domain import Cdr, Command


class InputError(Exception):
    """A file that cannot be read at all (missing, unreadable)."""


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    with handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if line:
                yield number, line


def read_cdrs(path: Path) -> Iterator[Cdr | Rejected]:
    """Every line as a CDR, or a rejection naming ``file:line``."""
    for number, raw in _lines(path):
        yield decode_cdr(raw, f"{path}:{number}")


def read_commands(path: Path) -> Iterator[Command | Rejected]:
    for number, raw in _lines(path):
        yield read_command(raw, f"{path}:{number}")


def merged(cdrs: Path, commands: Path | None) -> tuple[list[Cdr | Command], list[Rejected]]:
    """All inputs in time order (commands first at the same instant, else file order), and
    the lines that did not decode."""
    keyed: list[tuple[float, int, int, Cdr | Command]] = []
    bad: list[Rejected] = []
    sources = [(0, read_commands(commands))] if commands is not None else []
    sources.append((1, read_cdrs(cdrs)))  # type: ignore[arg-type]
    for rank, items in sources:
        for seq, item in enumerate(items):
            if isinstance(item, Rejected):
                bad.append(item)
            else:
                at = item.started_at if isinstance(item, Cdr) else item.at
                keyed.append((at.timestamp(), rank, seq, item))
    keyed.sort(key=lambda k: k[:3])
    return [k[3] for k in keyed], bad
