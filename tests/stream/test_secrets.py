"""Secrets reach the engine through the environment or files, never through argv: a sink
against a PostgreSQL that demands a password, given in a file, keeps it out of its command
line and its output; a password in a URL on the command line is refused."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.postgres import local_server

from engine.cli import main
from engine.secrets import EVENT_STORE_PASSWORD, SecretError, redact, secret, with_password
from engine.store import StoreError
from engine.store.postgres import PostgresStore
from engine.stream.topics import Topics

from .harness import REPO
from .test_sink import expected_ids, offline_decisions, publish, topics  # noqa: F401

PASSWORD = f"pw-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def guarded_postgres() -> Iterator[str]:
    """A server whose TCP clients must give ``PASSWORD``; its URL carries none."""
    with local_server(password=PASSWORD) as url:
        yield url


def test_secret_from_variable_or_file(tmp_path: Path) -> None:
    names = EVENT_STORE_PASSWORD
    assert secret(names, {}) is None
    assert secret(names, {names[0]: "a"}) == "a"
    path = tmp_path / "pw"
    path.write_text("from-file\n")
    assert secret(names, {names[1]: str(path)}) == "from-file"
    with pytest.raises(SecretError, match="not both"):
        secret(names, {names[0]: "a", names[1]: str(path)})
    with pytest.raises(SecretError, match="cannot read") as missing:
        secret(names, {names[1]: str(tmp_path / "absent")})
    assert "Traceback" not in str(missing.value)
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SecretError, match="empty"):
        secret(names, {names[1]: str(tmp_path / "empty")})


def test_urls_are_redacted_and_filled_in_memory() -> None:
    assert redact("postgresql://u:hunter2@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"
    assert with_password("http://u@h:8123/db", "p/w@") == "http://u:p%2Fw%40@h:8123/db"
    assert with_password("http://u:x@h/db", "other") == "http://u:x@h/db"


@pytest.mark.chaos
@pytest.mark.parametrize(
    "argv",
    [
        ["store", "verify", "--store", f"postgresql://rating:{PASSWORD}@db.example/rating"],
        ["query", "SELECT 1", "--clickhouse", f"http://rating:{PASSWORD}@ch.example:8123/r"],
        ["sink", "--store", f"postgres://rating:{PASSWORD}@db.example/rating"],
    ],
)
def test_a_password_on_the_command_line_is_refused(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "carries a password" in err
    assert "_PASSWORD_FILE" in err
    assert PASSWORD not in err


@pytest.mark.chaos
def test_the_store_password_comes_from_a_file(
    guarded_postgres: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(StoreError, match="no password supplied") as refused:
        PostgresStore(guarded_postgres).close()
    assert PASSWORD not in str(refused.value)
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    monkeypatch.setenv(EVENT_STORE_PASSWORD[1], str(tmp_path / "pw"))
    with PostgresStore(guarded_postgres) as store:
        assert store.position() >= 0
    (tmp_path / "pw").write_text("wrong\n")
    with pytest.raises(StoreError, match="password authentication failed") as wrong:
        PostgresStore(guarded_postgres).close()
    assert "wrong" not in str(wrong.value).replace("password authentication failed", "")


@pytest.mark.chaos
def test_a_running_sink_shows_the_password_nowhere(
    kafka_bootstrap: str,
    topics: Topics,  # noqa: F811
    guarded_postgres: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decisions = offline_decisions(300)
    publish(kafka_bootstrap, topics.wallet_events.name, decisions)
    secret_file = tmp_path / "event-store-password"
    secret_file.write_text(PASSWORD)
    env = {
        **os.environ,
        "RATING_TOPICS": topics.source,
        "KAFKA_BOOTSTRAP": kafka_bootstrap,
        EVENT_STORE_PASSWORD[1]: str(secret_file),
    }
    group = f"sink-{uuid.uuid4().hex[:6]}"
    argv = [sys.executable, "-m", "engine.cli", "sink", "--store", guarded_postgres]
    argv += ["--group", group, "--idle-exit", "3"]
    sink = subprocess.Popen(
        argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # Right after fork, before exec, the child's cmdline is empty or still pytest's.
        cmdline = b""
        for _ in range(600):
            cmdline = Path(f"/proc/{sink.pid}/cmdline").read_bytes()
            if b"engine.cli" in cmdline or sink.poll() is not None:
                break
            time.sleep(0.05)
        environ = Path(f"/proc/{sink.pid}/environ").read_bytes()
        out, err = sink.communicate(timeout=120)
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.wait()
    assert sink.returncode == 0, err
    assert b"sink" in cmdline and guarded_postgres.encode() in cmdline
    assert PASSWORD.encode() not in cmdline
    assert PASSWORD.encode() not in environ  # only the file's name is in the environment
    assert "events stored" in out
    assert PASSWORD not in out and PASSWORD not in err
    monkeypatch.setenv(EVENT_STORE_PASSWORD[0], PASSWORD)
    with PostgresStore(guarded_postgres) as store:
        stored = [e.event_id for batch in store.read_all() for e in batch]
        assert sorted(stored) == sorted(expected_ids(decisions))
        assert store.verify() == []
