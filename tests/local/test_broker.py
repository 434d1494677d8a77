"""Which broker a local stack gets, and the pieces of the jar broker that need no JVM."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from engine.local import BrokerError, ExternalBroker, LocalJarBroker, free_ports, running_broker
from engine.local.broker import TestcontainersBroker, is_external, provider_from_env
from engine.local.jar_broker import java_of, log_tail, random_cluster_id, server_properties


def test_kafka_bootstrap_names_a_broker_nobody_starts_or_stops() -> None:
    provider = provider_from_env({"KAFKA_BOOTSTRAP": " h:1,h:2 ", "KAFKA_PROVIDER": "x"})
    assert isinstance(provider, ExternalBroker) and is_external(provider)
    with running_broker(provider) as bootstrap:
        assert bootstrap == "h:1,h:2"


def test_without_kafka_bootstrap_the_jars_or_docker() -> None:
    for choice in ("", "local", "jar"):
        assert isinstance(provider_from_env({"KAFKA_PROVIDER": choice}), LocalJarBroker)
    docker = provider_from_env({"KAFKA_PROVIDER": "Testcontainers"})
    assert isinstance(docker, TestcontainersBroker) and not is_external(docker)
    with pytest.raises(BrokerError, match="KAFKA_PROVIDER='zookeeper' is not known"):
        provider_from_env({"KAFKA_PROVIDER": "zookeeper"})


def test_an_external_broker_needs_an_address() -> None:
    with pytest.raises(BrokerError, match="KAFKA_BOOTSTRAP"):
        ExternalBroker("")


def test_free_ports_are_distinct() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5 and all(0 < p < 65536 for p in ports)


def test_cluster_ids_read_like_kafkas_and_never_like_a_flag() -> None:
    ids = {random_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)


def test_server_properties_fill_the_template(tmp_path: Path) -> None:
    text = server_properties(tmp_path, 1234, 5678)
    assert "@PORT@" not in text and "@LOG_DIRS@" not in text
    assert "127.0.0.1:1234" in text and "127.0.0.1:5678" in text
    assert str(tmp_path / "kraft-logs") in text


def test_log_tail_leaves_out_stack_frames(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("started\nERROR boom\n\tat kafka.Foo(Foo.scala:1)\nstopped\n")
    tail = log_tail(log, tmp_path / "absent.log")
    assert "ERROR boom" in tail and "Foo.scala" not in tail
    assert log_tail(tmp_path / "absent.log") == "(no broker log was written)"


def test_a_failed_fetch_is_reported_with_what_kafka_sh_said(tmp_path: Path) -> None:
    script = tmp_path / "kafka.sh"
    script.write_text("echo 'no route to Maven Central' >&2\nexit 3\n")
    with pytest.raises(BrokerError, match=r"(?s)kafka\.sh fetch failed \(exit 3\):.*no route"):
        LocalJarBroker(kafka_sh=script).fetch()


def test_a_failed_storage_format_is_reported_and_leaves_nothing_behind(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "kafka_2.13-0.0.0.jar").touch()
    script = tmp_path / "kafka.sh"
    script.write_text(f"echo '{lib}'\n")
    broker = LocalJarBroker(kafka_sh=script, java="false")  # a "JVM" that exits 1 at once
    assert broker.fetch() == lib
    with pytest.raises(BrokerError, match=r"(?s)formatting KRaft storage failed \(exit 1\):"):
        broker.start()
    assert broker.data_dir is None


def test_without_testcontainers_the_error_names_the_locked_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # None in sys.modules: the import raises ImportError, installed or not.
    monkeypatch.setitem(sys.modules, "testcontainers.community.kafka", None)
    with pytest.raises(BrokerError, match=r"make setup-testcontainers") as raised:
        TestcontainersBroker().start()
    assert "Docker" in str(raised.value) and "unset KAFKA_PROVIDER" in str(raised.value)


def test_without_a_docker_engine_the_error_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    class DockerException(Exception):
        pass

    class KafkaContainer:  # testcontainers' asks the Docker engine for its version at once
        def __init__(self, image: str) -> None:
            raise DockerException("Error while fetching server API version")

    kafka = types.ModuleType("testcontainers.community.kafka")
    kafka.KafkaContainer = KafkaContainer
    errors = types.ModuleType("docker.errors")
    errors.DockerException = DockerException
    monkeypatch.setitem(sys.modules, "testcontainers.community.kafka", kafka)
    monkeypatch.setitem(sys.modules, "docker.errors", errors)
    broker = TestcontainersBroker("example/kafka:1")
    with pytest.raises(BrokerError, match=r"Docker could not run example/kafka:1: Error while"):
        broker.start()
    broker.stop()  # nothing was started, nothing to stop


def test_the_jar_broker_runs_on_java_home_s_jvm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``$JAVA_HOME/bin/java`` (make's: Debian's OpenJDK 17 of system.lock), as Maven and
    kafka.sh pick it; ``java`` on PATH only where JAVA_HOME is unset."""
    assert java_of({"JAVA_HOME": "/usr/lib/jvm/x"}) == "/usr/lib/jvm/x/bin/java"
    assert java_of({}) == "java"
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(BrokerError, match=f"'{tmp_path}/bin/java' not found"):
        LocalJarBroker().fetch()
