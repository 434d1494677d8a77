"""Where the tests (and benchmarks) get a real PostgreSQL server from.

``POSTGRES_URL`` names a server someone else runs. Otherwise a private server is made from
Debian's binaries of the PostgreSQL major version deploy/local/system.lock names
(``/usr/lib/postgresql/<major>/bin``, as deploy/local/system.sh checks and installs them,
never another major a machine has beside it): ``initdb`` into a temporary directory,
started on a free port of 127.0.0.1 with its unix socket inside that directory, so it never
clashes with a system server; it is stopped and removed at the end. ``initdb`` refuses to
run as root, so as root the server runs as the ``postgres`` system user.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
import psycopg.sql

DATABASE = "rating"


class PostgresError(RuntimeError):
    """No server could be provided; the message says why and what to do."""


SYSTEM_LOCK = Path(__file__).resolve().parents[2] / "deploy" / "local" / "system.lock"
DEBIAN_LIB = Path("/usr/lib/postgresql")


def locked_major() -> str:
    """The PostgreSQL major version of system.lock: N of its ``postgresql-N`` package."""
    for line in SYSTEM_LOCK.read_text().splitlines():
        found = re.fullmatch(r"postgresql-([0-9]+) \S+", line)
        if found:
            return found.group(1)
    raise PostgresError(f"{SYSTEM_LOCK} names no postgresql-N package")


def pg_bin(lib: Path = DEBIAN_LIB) -> Path:
    """The directory of ``initdb`` and ``pg_ctl``: Debian's of the lock's major version
    (system.sh's choice too); on a machine without Debian's folder, the one on PATH."""
    major = locked_major()
    if (lib / major / "bin" / "initdb").exists():
        return lib / major / "bin"
    initdb = None if lib.is_dir() else shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresError(
        f"no PostgreSQL {major} (system.lock's) found: run make setup, or set POSTGRES_URL"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(argv: list[str], as_user: str | None) -> None:
    if as_user is not None:
        argv = ["runuser", "-u", as_user, "--", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PostgresError(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")


@contextmanager
def local_server(durable: bool = False, password: str | None = None) -> Iterator[str]:
    """A fresh server with database ``rating``; yields its URL. ``durable=False`` turns
    fsync off, which tests can afford and benchmarks must not. With ``password``, TCP
    clients must give it (scram-sha-256); the URL yielded does not carry it."""
    bindir = pg_bin()
    as_user = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="rating-pg-"))
    if as_user is not None:
        shutil.chown(root, as_user)
    data, log = root / "data", root / "server.log"
    _run(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            *(["--auth-local=trust", "--auth-host=scram-sha-256"] if password else ["-A", "trust"]),
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
        as_user,
    )
    port = free_port()
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync={'on' if durable else 'off'}"
    )
    started = False
    try:
        _run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"],
            as_user,
        )
        started = True
        admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        if password:  # over the unix socket, which stays trusted
            admin = f"postgresql://postgres@/postgres?host={quote(str(root))}&port={port}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
            if password:
                conn.execute(
                    psycopg.sql.SQL("ALTER ROLE postgres PASSWORD {}").format(
                        psycopg.sql.Literal(password)
                    )
                )
        yield f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"
    except PostgresError as exc:
        tail = log.read_text()[-2000:] if log.exists() else ""
        raise PostgresError(f"{exc}\n{tail}") from exc
    finally:
        if started:
            _run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], as_user
            )
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def server(durable: bool = False) -> Iterator[str]:
    """``POSTGRES_URL`` if set, else a private server for as long as the block runs."""
    url = os.environ.get("POSTGRES_URL")
    if url:
        yield url
        return
    with local_server(durable) as local:
        yield local


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose sessions create and find tables in ``schema``."""
    options = quote(f"-csearch_path={schema}")
    return f"{url}{'&' if '?' in url else '?'}options={options}"


@contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """An empty schema of the server at ``url`` (dropped afterwards); yields a URL using it,
    so that each test gets its own tables on one shared server."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield with_search_path(url, name)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


class RestartableServer:
    """A private server that a test can stop and start again on the same port and data
    directory, to play a database restart under a running client (``with`` it: started on
    entry, stopped and removed on exit)."""

    def __init__(self) -> None:
        self.bindir = pg_bin()
        self.as_user = "postgres" if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="rating-pg-restart-"))
        if self.as_user is not None:
            shutil.chown(self.root, self.as_user)
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.port = free_port()
        self.running = False
        _run(
            [
                str(self.bindir / "initdb"),
                *("-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8"),
                "--locale=C",
                "--no-sync",
            ],
            self.as_user,
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        pg_ctl = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log)]
        _run([*pg_ctl, "-o", options, "-w", "start"], self.as_user)
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """``fast``: the server closes every session, as at a planned restart;
        ``immediate``: it dies at once, as in a crash (recovery at the next start)."""
        if self.running:
            _run(
                [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
                self.as_user,
            )
            self.running = False

    def __enter__(self) -> RestartableServer:
        self.start()
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
