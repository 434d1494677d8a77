"""The worker's settings: a flag given wins, else its ``RATING_*`` variable (or
``KAFKA_BOOTSTRAP``), else the default; text from the environment becomes numbers and
paths."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from engine.stream.settings import WorkerSettings


def test_defaults_without_flags_or_variables() -> None:
    settings = WorkerSettings.from_env("catalog.yaml", environ={})
    assert settings == WorkerSettings(catalog=Path("catalog.yaml"))


def test_variables_are_read_and_converted() -> None:
    environ = {
        "KAFKA_BOOTSTRAP": "kafka-1:9092",
        "RATING_APP_ID": "fleet-7",
        "RATING_DATA_DIR": "/var/lib/rating",
        "RATING_TICK_INTERVAL": "0",
        "RATING_METRICS_PORT": "9100",
        "RATING_SNAPSHOT_MAX_BYTES": "1000",
        "RATING_SESSION_TIMEOUT": "2.5",
    }
    s = WorkerSettings.from_env("c.yaml", environ=environ)
    assert (s.bootstrap, s.app_id, s.data_dir) == (
        "kafka-1:9092",
        "fleet-7",
        Path("/var/lib/rating"),
    )
    assert (s.tick_interval, s.metrics_port, s.snapshot_max_bytes) == (0.0, 9100, 1000)
    assert s.session_timeout == 2.5


def test_the_garbage_collectors_settings() -> None:
    s = WorkerSettings.from_env(
        "c.yaml", environ={"RATING_GC_FREEZE": "false", "RATING_GC_THRESHOLD": "700,10,10"}
    )
    assert (s.gc_freeze, s.gc_threshold) == (False, "700,10,10")
    assert WorkerSettings.from_env("c.yaml", environ={"RATING_GC_FREEZE": "0"}).gc_freeze is False
    with pytest.raises(msgspec.ValidationError, match="three positive integers"):
        WorkerSettings.from_env("c.yaml", environ={"RATING_GC_THRESHOLD": "700"})


def test_a_flag_wins_over_its_variable_and_an_empty_variable_is_unset() -> None:
    environ = {"RATING_APP_ID": "from-env", "RATING_STORE": ""}
    s = WorkerSettings.from_env("c.yaml", environ=environ, app_id="from-flag", batch_size=None)
    assert (s.app_id, s.store, s.batch_size) == ("from-flag", "rocksdb://", 1000)


def test_a_variable_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError):
        WorkerSettings.from_env("c.yaml", environ={"RATING_METRICS_PORT": "ninety"})


def test_the_batch_wait_from_its_variable_or_flag() -> None:
    environ = {"RATING_BATCH_WITHIN": "0.05"}
    assert WorkerSettings.from_env("c.yaml", environ=environ).batch_within == 0.05
    flagged = WorkerSettings.from_env("c.yaml", environ=environ, batch_within=0.01)
    assert flagged.batch_within == 0.01


@pytest.mark.parametrize("wait", ["0", "-0.02", "nan", "0.0000001", "11", "inf"])
def test_a_batch_wait_that_would_stall_spin_or_hold_a_partition_is_refused(wait: str) -> None:
    # No wait at all is Faust's "until the batch is full": a quiet partition would never
    # be decided; a wait of next to nothing spins the loop while no input comes.
    with pytest.raises(msgspec.ValidationError, match=r"batch_within is seconds from 0\.001 to 10"):
        WorkerSettings.from_env("c.yaml", environ={"RATING_BATCH_WITHIN": wait})
