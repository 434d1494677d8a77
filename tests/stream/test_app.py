"""The Faust app made from the worker's settings: the broker, group and data directory they
name, and the choices the worker depends on (raw records, no implicit topics, no web server,
every replica acknowledging). Made, not started: no broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.stream.app import create_app
from engine.stream.settings import WorkerSettings


def test_the_app_is_the_settings_group_on_their_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAFKA_SECURITY_PROTOCOL", raising=False)
    settings = WorkerSettings(
        catalog=tmp_path / "c.yaml",
        bootstrap="kafka-1:9092",
        app_id="fleet-7",
        data_dir=tmp_path / "data",
        store="memory://",
        session_timeout=7.0,
    )
    conf = create_app(settings).conf
    assert conf.id == "fleet-7"
    assert [str(url) for url in conf.broker] == ["kafka://kafka-1:9092"]
    assert Path(conf.datadir) == tmp_path / "data"
    assert str(conf.store) == "memory:"
    assert conf.broker_session_timeout == 7.0


def test_the_engine_not_faust_owns_topics_and_bytes(tmp_path: Path) -> None:
    conf = create_app(WorkerSettings(catalog=tmp_path / "c.yaml", data_dir=tmp_path)).conf
    assert (conf.key_serializer, conf.value_serializer) == ("raw", "raw")
    assert conf.topic_allow_declare is False and conf.web_enabled is False
    assert conf.producer_acks == -1
    assert conf.consumer_auto_offset_reset == "earliest"
