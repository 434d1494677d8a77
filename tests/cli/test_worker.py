"""``rating-engine worker``: flags over ``RATING_*`` variables, the base-revision rule applied
before the worker loop, and the live catalog revisions handed to it. (The worker running:
tests/stream/test_worker.py; the rule on a real broker: tests/stream/test_revisions.py.)"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

import engine.stream.live_catalogs
import engine.stream.revisions
import engine.stream.runner
from engine import cli
from engine.cli import worker
from engine.domain import Catalog
from engine.stream.settings import WorkerSettings
from engine.stream.topics import StreamError, Topics

from .parsing import run

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml")


class FakeRevisions(dict[int, Catalog]):
    """``CatalogRevisions`` as the command uses it: started, handed over, stopped."""

    started = stopped = 0

    def __init__(
        self, bootstrap: str, topics: Topics, built: Mapping[str, Catalog] | None = None
    ) -> None:
        super().__init__()
        self.bootstrap = bootstrap
        self.built = dict(built or {})

    def start(self) -> FakeRevisions:
        FakeRevisions.started += 1
        return self

    def stop(self) -> None:
        FakeRevisions.stopped += 1


@pytest.fixture
def revisions(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Path]]:
    """The base-revision rule and the live table, without a broker: what they were asked."""
    asked: list[tuple[str, Path]] = []

    def base_revision(bootstrap: str, topics: Topics, path: Path) -> int:
        asked.append((bootstrap, path))
        return 1

    monkeypatch.setattr(engine.stream.revisions, "base_revision", base_revision)
    monkeypatch.setattr(engine.stream.live_catalogs, "CatalogRevisions", FakeRevisions)
    FakeRevisions.started = FakeRevisions.stopped = 0
    return asked


def test_flags_win_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, revisions: list[tuple[str, Path]]
) -> None:
    ran: list[tuple[WorkerSettings, str, Mapping[int, Catalog] | None]] = []
    loaded: list[Catalog] = []

    def run_worker(
        settings: WorkerSettings,
        catalog: Catalog,
        topics: Topics,
        loglevel: str = "",
        revisions: Mapping[int, Catalog] | None = None,
    ) -> int:
        ran.append((settings, loglevel, revisions))
        loaded.append(catalog)
        return 0

    monkeypatch.setattr(engine.stream.runner, "run_worker", run_worker)
    monkeypatch.setenv("RATING_APP_ID", "from-env")
    monkeypatch.setenv("RATING_TICK_INTERVAL", "5")
    argv = ("worker", "--catalog", EXAMPLE, "--bootstrap", "b:9092", "--tick-interval", "0")
    assert run(worker, *argv, "--loglevel", "info", "--batch-within", "0.05") == 0
    [(settings, loglevel, live)] = ran
    assert settings.batch_within == 0.05
    assert (settings.app_id, settings.tick_interval, settings.bootstrap) == (
        "from-env",
        0,
        "b:9092",
    )
    assert settings.catalog == Path(EXAMPLE) and loglevel == "info"
    # The rule was applied to the file, and the started live table handed to the loop.
    assert revisions == [("b:9092", Path(EXAMPLE))]
    assert isinstance(live, FakeRevisions) and live.bootstrap == "b:9092"
    assert (FakeRevisions.started, FakeRevisions.stopped) == (1, 1)
    # The file's catalog, loaded once, stands for its revision (by the file's digest).
    digest = hashlib.sha256(Path(EXAMPLE).read_bytes()).hexdigest()
    assert live.built == {digest: loaded[0]}


def test_a_file_that_is_not_a_published_revision_stops_the_worker_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def base_revision(bootstrap: str, topics: Topics, path: Path) -> int:
        raise StreamError(f"{path} is not a published revision; publish it with ...")

    def run_worker(*args: object, **kwargs: object) -> int:
        raise AssertionError("the worker must not run")

    monkeypatch.setattr(engine.stream.revisions, "base_revision", base_revision)
    monkeypatch.setattr(engine.stream.runner, "run_worker", run_worker)
    assert cli.main(["worker", "--catalog", EXAMPLE, "--bootstrap", "b:9092"]) == 1
    err = capsys.readouterr().err
    assert f"{EXAMPLE} is not a published revision" in err and "Traceback" not in err


# Run as the worker's process would be: the command's own imports, up to the base-revision
# rule (refused here, so no broker is needed), then the modules it had loaded.
_LOADED_BY_THE_WORKER = """
import json, sys
import engine.stream.revisions
from engine import cli
from engine.stream.topics import StreamError

def refuse(*args):
    raise StreamError("stopped before the broker")

engine.stream.revisions.base_revision = refuse
status = cli.main(["worker", "--catalog", sys.argv[1], "--bootstrap", "b:9092"])
print(json.dumps([status, sorted({name.split(".")[0] for name in sys.modules})]))
"""


def test_the_worker_never_loads_the_clickhouse_client_or_the_postgresql_driver() -> None:
    """The worker projects nothing and stores nothing in PostgreSQL: loading clickhouse-connect
    and psycopg cost every worker a third of a second of start-up and about 14 MB (the CLI once
    imported them for their error classes)."""
    done = subprocess.run(
        [sys.executable, "-c", _LOADED_BY_THE_WORKER, EXAMPLE],
        capture_output=True,
        text=True,
        timeout=120,
    )
    status, loaded = json.loads(done.stdout)
    assert status == 1 and "stopped before the broker" in done.stderr
    assert {"engine", "faust", "confluent_kafka"} <= set(loaded)  # the worker's own
    assert not {"clickhouse_connect", "psycopg", "chdb", "psycopg_pool"} & set(loaded)


def test_a_batch_wait_of_zero_is_refused_before_the_worker_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def run_worker(*args: object, **kwargs: object) -> int:
        raise AssertionError("the worker must not run")

    monkeypatch.setattr(engine.stream.runner, "run_worker", run_worker)
    argv = ["worker", "--catalog", EXAMPLE, "--bootstrap", "b:9092", "--batch-within", "0"]
    assert cli.main(argv) != 0
    err = capsys.readouterr().err
    assert "batch_within is seconds from 0.001 to 10" in err and "Traceback" not in err
