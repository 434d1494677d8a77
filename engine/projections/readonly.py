"""What ``rating-engine query`` lets an analyst run: reads, one statement, no outside world.

Two layers, because each alone leaks. The server layer is ClickHouse's own ``readonly=1``
(``READ_ONLY``, sent with every query): no INSERT, ALTER, TRUNCATE, DROP, SYSTEM or setting
change, whatever the SQL says. But ``readonly`` still lets a SELECT call the scalar
``file('/etc/passwd')``, and chDB still honours ``INTO OUTFILE``, which writes a local file.
So before anything is sent, ``check_read_only`` reads the statement's tokens (strings and
comments skipped) and refuses: more than one statement, a first keyword that is not a read,
``INTO OUTFILE`` / ``FROM INFILE``, and any call of a function that reaches files, URLs,
other servers, object stores or programs (``file``, ``url``, ``remote``, ``s3``, ``input``,
``executable``, ``system``...). Writes are for ``--write``, which skips both layers.
"""

from __future__ import annotations

import re

from .clickhouse import ProjectionError

READ_ONLY: dict[str, int] = {"readonly": 1}
"""Settings sent with a read-only query: ClickHouse refuses every write and setting change."""

READS = frozenset({"select", "with", "show", "describe", "desc", "explain", "exists"})

# Table (or scalar) functions that read or write outside the projections' tables.
OUTSIDE = frozenset(
    {
        "file",
        "url",
        "input",
        "system",
        "executable",
        "executablepool",
        "remote",
        "remotesecure",
        "cluster",
        "clusterallreplicas",
        "gcs",
        "oss",
        "cosn",
        "mysql",
        "postgresql",
        "mongodb",
        "redis",
        "sqlite",
        "jdbc",
        "odbc",
        "hive",
        "hudi",
        "python",
        "arrowflight",
        "ytsaurus",
    }
)
OUTSIDE_PREFIXES = (
    "s3",
    "url",
    "file",
    "hdfs",
    "azureblob",
    "iceberg",
    "deltalake",
    "paimon",
    "remote",
    "cluster",
    "executable",
)
WRITES_FILES = frozenset({"outfile", "infile"})

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>--[^\n]*|\#[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<string>'(?:[^'\\]|\\.|'')*(?:'|\Z))
  | (?P<quoted>"(?:[^"\\]|\\.|"")*(?:"|\Z)|`(?:[^`\\]|\\.|``)*(?:`|\Z))
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def tokens(sql: str) -> list[tuple[str, str]]:
    """``(kind, text)`` of each token that matters: words, quoted names, punctuation.
    Strings, comments and whitespace are dropped; a quoted name is given unquoted."""
    out: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup or "other"
        text = match.group()
        if kind in ("space", "comment", "string"):
            continue
        if kind == "quoted":
            kind, text = "word", text[1:-1]
        out.append((kind, text))
    return out


def _unterminated(sql: str) -> bool:
    for match in _TOKEN.finditer(sql):
        text, kind = match.group(), match.lastgroup
        if kind == "comment" and text.startswith("/*") and not text.endswith("*/"):
            return True
        if kind in ("string", "quoted") and (len(text) < 2 or text[-1] != text[0]):
            return True
    return False


def _outside(name: str) -> bool:
    lowered = name.lower()
    return lowered in OUTSIDE or lowered.startswith(OUTSIDE_PREFIXES)


def check_read_only(sql: str) -> None:
    """``ProjectionError`` saying why, unless ``sql`` is one read of the projections."""
    if _unterminated(sql):
        # The client appends its SETTINGS clause (readonly=1) after the statement: an open
        # comment or string would swallow it.
        raise ProjectionError("unterminated comment, string or quoted name in the query")
    toks = tokens(sql)
    while toks and toks[-1] == ("other", ";"):
        toks.pop()
    if not toks:
        raise ProjectionError("empty query: give one SELECT statement")
    if ("other", ";") in toks:
        raise ProjectionError("one statement at a time: the query contains ';'")
    first = next((text for kind, text in toks if kind == "word"), "")
    if first.lower() not in READS:
        raise ProjectionError(
            f"{first.upper() or sql.strip()[:20]!s} is not a read: query is read-only "
            "(SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, EXISTS); use --write to change data"
        )
    for i, (kind, text) in enumerate(toks):
        if kind != "word":
            continue
        if text.lower() in WRITES_FILES:
            raise ProjectionError(
                f"INTO OUTFILE / FROM INFILE refused: query reads the projections only, "
                f"never local files ({text.upper()})"
            )
        if i + 1 < len(toks) and toks[i + 1] == ("other", "(") and _outside(text):
            raise ProjectionError(
                f"{text}() refused: query reads the projections only, never files, URLs, "
                "other servers or programs"
            )
