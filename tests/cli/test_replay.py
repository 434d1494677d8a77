"""``rating-engine replay``: an offline replay appends to the store itself, so it is refused
behind a running worker group; its window is read before anything else. (Replays run:
tests/offline/test_replay.py, tests/stream/test_replay_stream.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import engine.stream.admin
from engine.cli import replay
from engine.cli.args import UsageError
from engine.stream.admin import BrokerUnavailable

from .parsing import parse, run

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml")


def members(monkeypatch: pytest.MonkeyPatch, answer: int | Exception) -> list[tuple[str, str]]:
    asked: list[tuple[str, str]] = []

    def group_members(bootstrap: str, group: str) -> int:
        asked.append((bootstrap, group))
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(engine.stream.admin, "group_members", group_members)
    return asked


def args(*more: str) -> list[str]:
    return ["replay", "--store", "sqlite:///x.db", "--catalog", EXAMPLE, *more]


def test_refused_behind_running_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = members(monkeypatch, 2)
    with pytest.raises(UsageError, match="has 2 running member"):
        replay._refuse_behind_workers(parse(replay, *args("--bootstrap", "b:9092")))
    assert asked == [("b:9092", "rating-engine")]


def test_not_refused_without_kafka_or_without_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP", raising=False)
    asked = members(monkeypatch, 0)
    replay._refuse_behind_workers(parse(replay, *args()))  # no broker named: not asked
    assert asked == []
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "env:9092")
    replay._refuse_behind_workers(parse(replay, *args("--app-id", "group-2")))
    assert asked == [("env:9092", "group-2")]


def test_no_broker_to_ask_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    members(monkeypatch, BrokerUnavailable("no broker"))
    replay._refuse_behind_workers(parse(replay, *args("--bootstrap", "b:9092")))
    assert "no broker at b:9092 to check for running workers" in capsys.readouterr().err


def test_the_group_defaults_to_rating_app_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATING_APP_ID", "fleet-7")
    assert parse(replay, *args()).app_id == "fleet-7"
    assert parse(replay, *args()).mode == "offline"


def test_a_window_that_is_not_an_instant_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        run(replay, *args("--from", "last tuesday"))


def test_jobs_default_to_the_cpus_and_must_be_one_or_more() -> None:
    assert parse(replay, *args()).jobs == (os.cpu_count() or 1)
    assert parse(replay, *args("--jobs", "3")).jobs == 3
    for bad in ("0", "-1", "two"):
        with pytest.raises(SystemExit):
            parse(replay, *args("--jobs", bad))
