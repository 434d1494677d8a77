"""Connecting to ClickHouse by URL: embedded chDB (``chdb:///path``) or a server over HTTP.

chDB runs inside this process and holds one data directory per process: clients on the same
path share it, and opening another path fails until every client of the first is closed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..secrets import CLICKHOUSE_PASSWORD, SecretError, secret, with_password

Client = Any
"""A clickhouse-connect client (``clickhouse_connect.driver.client.Client``)."""


class ProjectionError(Exception):
    """A ClickHouse URL, connection or query that failed, said plainly."""


def _database(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme == "chdb":
        return parse_qs(parts.query).get("database", [None])[0]
    name = unquote(parts.path.strip("/"))
    return name or None


def _safe_name(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ProjectionError(f"database name {name!r}: use letters, digits and underscores")
    return name


def connect(url: str) -> Client:
    """A client for ``chdb:///path[?database=NAME]`` (embedded) or
    ``http(s)://user:password@host:port/database`` (a server). The database is created if
    it does not exist."""
    # Imported here, not above: the CLI imports `ProjectionError` for every command, and
    # the worker, which never connects, is spared the client's import and its memory.
    import clickhouse_connect
    from clickhouse_connect.driver.exceptions import ClickHouseError

    scheme = urlsplit(url).scheme
    if scheme not in ("chdb", "http", "https"):
        raise ProjectionError(
            f"ClickHouse URL {url!r}: expected chdb:///path (embedded) or "
            "http(s)://user:password@host:port/database"
        )
    if scheme == "chdb" and not urlsplit(url).path:
        raise ProjectionError(f"ClickHouse URL {url!r}: chdb:///path needs a directory")
    if scheme != "chdb":
        # The password from RATING_CLICKHOUSE_PASSWORD(_FILE) when the URL has none.
        try:
            url = with_password(url, secret(CLICKHOUSE_PASSWORD))
        except SecretError as exc:
            raise ProjectionError(str(exc)) from None
    database = _database(url)
    try:
        if database is None or database == "default":
            return clickhouse_connect.get_client(dsn=url)
        base = url.split("?", 1)[0] if scheme == "chdb" else url.rsplit("/", 1)[0]
        admin = clickhouse_connect.get_client(dsn=base)
        try:
            admin.command(f"CREATE DATABASE IF NOT EXISTS {_safe_name(database)}")
            return clickhouse_connect.get_client(dsn=url)
        finally:
            admin.close()
    except ClickHouseError as exc:
        password = urlsplit(url).password
        reason = str(exc).replace(password, "***") if password else str(exc)
        raise ProjectionError(
            f"cannot connect to ClickHouse at {_redacted(url)}: {reason}"
        ) from None


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url
