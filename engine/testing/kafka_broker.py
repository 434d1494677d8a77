"""Where the tests get a Kafka broker from.

The streaming tests need a real broker, not a mock: the behaviour they pin down (keyed
partitioning, consumer groups, transactions) lives in the broker. Where that broker comes
from depends on the machine, so it is pluggable behind `BrokerProvider`:

* `ExternalBroker`: a broker someone else runs, named by ``KAFKA_BOOTSTRAP``.
* `LocalJarBroker`: the default. Starts Apache Kafka (KRaft, one node) from the jars that
  ``deploy/local/kafka.sh fetch`` puts in the cache, on free ports and in a temporary data
  dir, so a test session never clashes with the broker of ``make kafka-up``.
* `TestcontainersBroker`: ``KAFKA_PROVIDER=testcontainers``, for machines with Docker.

`provider_from_env` picks one of them; ``tests/stream/conftest.py`` wraps it in a session
fixture.
"""

from __future__ import annotations

import atexit
import base64
import importlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from confluent_kafka.admin import AdminClient

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO_ROOT / "deploy" / "local" / "kafka.sh"

# Confluent Platform 7.9 ships Apache Kafka 3.9, the version deploy/local/kafka/pom.xml pins.
DEFAULT_TESTCONTAINERS_IMAGE = "confluentinc/cp-kafka:7.9.0"


class BrokerError(RuntimeError):
    """A broker could not be provided; the message says why and what to do."""


class BrokerProvider(Protocol):
    """Something that can hand the tests a running broker and take it away again."""

    def start(self) -> str:
        """Make a broker available and return its bootstrap servers (``host:port,...``)."""
        ...

    def stop(self) -> None:
        """Release whatever `start` acquired. Safe to call more than once."""
        ...


def broker_answers(
    bootstrap: str, timeout: float = 2.0, config: Mapping[str, Any] | None = None
) -> bool:
    """Whether a broker at `bootstrap` answers a metadata request and lists itself.

    A TCP connect is not enough: the socket opens before the broker has caught up with
    the KRaft metadata log, and requests sent then fail.
    """
    admin = AdminClient(
        {
            "bootstrap.servers": bootstrap,
            # Connection-refused lines while the broker boots are expected noise.
            "log_level": 0,
            "socket.timeout.ms": max(int(timeout * 1000), 10),
            **(config or {}),
        }
    )
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception:  # confluent_kafka raises KafkaException for every transport failure.
        return False
    return bool(metadata.brokers)


def wait_until_answers(
    bootstrap: str,
    timeout: float,
    still_alive: Callable[[], bool] = lambda: True,
    interval: float = 0.25,
    config: Mapping[str, Any] | None = None,
) -> bool:
    """Poll `broker_answers` until it says yes (True), the deadline passes or the
    process behind the broker dies (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not still_alive():
            return False
        wait = min(2.0, max(deadline - time.monotonic(), 0.1))
        if broker_answers(bootstrap, timeout=wait, config=config):
            return True
        time.sleep(interval)
    return False


class ExternalBroker:
    """A broker that is already running elsewhere (``KAFKA_BOOTSTRAP``); we neither start
    nor stop it, so a developer can point the tests at a long-lived broker and skip the
    start-up cost, or CI can bring its own."""

    def __init__(self, bootstrap: str | None = None) -> None:
        value = bootstrap if bootstrap is not None else os.environ.get("KAFKA_BOOTSTRAP", "")
        if not value:
            raise BrokerError("ExternalBroker needs KAFKA_BOOTSTRAP (host:port[,host:port...])")
        self._bootstrap = value

    def start(self) -> str:
        return self._bootstrap

    def stop(self) -> None:
        return None


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that were free a moment ago.

    All sockets stay bound until every port is known, so the kernel cannot hand out the
    same port twice; another process can still take one before the broker binds it, which
    `LocalJarBroker.start` handles by retrying.
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def random_cluster_id() -> str:
    """A KRaft cluster id in the format of ``kafka.tools.StorageTool random-uuid``.

    Kafka's Uuid is a random UUID in unpadded URL-safe base64; Kafka never hands out ids
    that start with '-' (they read like command-line flags). Making it here saves one JVM
    start per test session.
    """
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not value.startswith("-"):
            return value


SERVER_PROPERTIES = REPO_ROOT / "deploy" / "local" / "server.properties"
LOG4J_PROPERTIES = REPO_ROOT / "deploy" / "local" / "log4j.properties"
"""The broker's config and logging, shared with ``deploy/local/kafka.sh``."""


def server_properties(data_dir: Path, port: int, controller_port: int) -> str:
    """The broker config for one KRaft node, on these ports and under ``data_dir``."""
    text = SERVER_PROPERTIES.read_text()
    text = text.replace("@CONTROLLER_PORT@", str(controller_port)).replace("@PORT@", str(port))
    return text.replace("@LOG_DIRS@", str(data_dir / "kraft-logs"))


def log4j_properties(log_file: Path) -> str:
    """Broker logging to one file, INFO for Kafka and WARN for the chatty loggers."""
    return LOG4J_PROPERTIES.read_text().replace("@LOG_FILE@", str(log_file))


def log_tail(*paths: Path, lines: int = 40) -> str:
    """The last lines of each non-empty file, stack frames left out, for error messages."""
    parts: list[str] = []
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        kept = [line for line in text.splitlines() if not line.startswith("\tat ")]
        if kept:
            parts.append(f"---- last lines of {path} ----\n" + "\n".join(kept[-lines:]))
    return "\n".join(parts) or "(no broker log was written)"


class LocalJarBroker:
    """Apache Kafka from the Maven-fetched jars, as a child process of the test session.

    It follows the steps of ``deploy/local/kafka.sh up`` but owns its process directly
    (no pid file, no detaching) so `stop` can always reap it, and it uses a temporary
    data dir and free ports so it never meets the developer's ``make kafka-up`` broker.
    Jars come from ``kafka.sh fetch``, the one place that knows about Maven.
    """

    def __init__(
        self,
        *,
        kafka_sh: Path = KAFKA_SH,
        java: str = "java",
        start_timeout: float = 60.0,
        stop_timeout: float = 30.0,
        attempts: int = 3,
    ) -> None:
        self._kafka_sh = kafka_sh
        self._java = java
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._attempts = attempts
        self._proc: subprocess.Popen[bytes] | None = None
        self._data_dir: Path | None = None
        self._bootstrap: str | None = None
        self._argv: list[str] = []

    @property
    def data_dir(self) -> Path | None:
        """The temporary data dir while the broker runs (logs are in ``<data_dir>/log``)."""
        return self._data_dir

    def fetch(self) -> Path:
        """Ask ``kafka.sh fetch`` for the jar directory, fetching the jars on first use."""
        if shutil.which(self._java) is None:
            raise BrokerError(
                f"{self._java!r} not found: LocalJarBroker needs Java 11+ "
                "(or set KAFKA_BOOTSTRAP to use a running broker)"
            )
        result = subprocess.run(
            ["bash", str(self._kafka_sh), "fetch"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BrokerError(
                f"{self._kafka_sh} fetch failed (exit {result.returncode}):\n{result.stderr}"
            )
        lib = Path(result.stdout.strip().splitlines()[-1])
        if not any(lib.glob("kafka_2.13-*.jar")):
            raise BrokerError(f"{self._kafka_sh} fetch named {lib}, which has no Kafka jars")
        return lib

    def start(self) -> str:
        if self._bootstrap is not None:
            return self._bootstrap
        lib = self.fetch()
        failure = ""
        for _ in range(self._attempts):
            try:
                return self._start_once(lib)
            except BrokerError as exc:
                failure = str(exc)
                self.stop()
                # A free port taken between our check and the broker's bind: try new ports.
                if "Address already in use" not in failure:
                    break
        raise BrokerError(failure)

    def _start_once(self, lib: Path) -> str:
        data_dir = Path(tempfile.mkdtemp(prefix="rating-engine-kafka-"))
        self._data_dir = data_dir
        # Registered before the JVM starts: a test session that dies without running its
        # fixture finalizers still does not leave a broker behind.
        atexit.register(self.stop)
        port, controller_port = free_ports(2)
        log_dir = data_dir / "log"
        log_dir.mkdir()
        props = data_dir / "server.properties"
        props.write_text(self._properties(data_dir, port, controller_port))
        log4j = data_dir / "log4j.properties"
        log4j.write_text(log4j_properties(log_dir / "server.log"))
        console = log_dir / "console.out"
        base = [
            self._java,
            "-cp",
            f"{lib}/*",
            "-Xms256m",
            "-Xmx1g",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{log4j}",
            f"-Dkafka.logs.dir={log_dir}",
        ]
        fmt = subprocess.run(
            [
                *base,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                random_cluster_id(),
                "-c",
                str(props),
                *self._format_args(),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if fmt.returncode != 0:
            raise BrokerError(
                f"formatting KRaft storage failed (exit {fmt.returncode}):\n"
                f"{fmt.stdout}{fmt.stderr}\n{log_tail(log_dir / 'server.log')}"
            )
        self._argv = [*base, "kafka.Kafka", str(props)]
        self._launch()
        proc = self._proc
        assert proc is not None
        bootstrap = f"127.0.0.1:{port}"
        alive = lambda: proc.poll() is None  # noqa: E731
        if not wait_until_answers(bootstrap, self._start_timeout, alive, config=self._client()):
            why = (
                f"exited with code {proc.returncode}"
                if proc.poll() is not None
                else f"did not answer within {self._start_timeout:g}s"
            )
            raise BrokerError(
                f"Kafka broker on {bootstrap} {why}\n{log_tail(log_dir / 'server.log', console)}"
            )
        self._bootstrap = bootstrap
        return bootstrap

    # Hooks for a variant (kafka_secured.py): the config, format options, client settings.
    def _properties(self, data_dir: Path, port: int, controller_port: int) -> str:
        return server_properties(data_dir, port, controller_port)

    def _format_args(self) -> list[str]:
        return []

    def _client(self) -> dict[str, Any]:
        return {}

    def _launch(self) -> None:
        assert self._data_dir is not None
        with (self._data_dir / "log" / "console.out").open("ab") as out:
            self._proc = subprocess.Popen(
                self._argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )

    def halt(self, kill: bool = True) -> None:
        """Stop the broker's process but keep its data dir and ports, for `resume`: an
        outage as clients see it. ``kill``: SIGKILL, as in a crash (no controlled
        shutdown); otherwise SIGTERM, as at a planned restart."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        if kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout=self._stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def resume(self) -> str:
        """Start the halted broker again on the same ports and data; returns once it
        answers."""
        if self._bootstrap is None or not self._argv:
            raise BrokerError("resume needs a broker that was started and then halted")
        if self._proc is None:
            self._launch()
        proc = self._proc
        assert proc is not None
        if not wait_until_answers(
            self._bootstrap,
            self._start_timeout,
            lambda: proc.poll() is None,
            config=self._client(),
        ):
            assert self._data_dir is not None
            log_dir = self._data_dir / "log"
            raise BrokerError(
                f"Kafka broker on {self._bootstrap} did not come back\n"
                f"{log_tail(log_dir / 'server.log', log_dir / 'console.out')}"
            )
        return self._bootstrap

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=self._stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None
        self._bootstrap = None
        atexit.unregister(self.stop)


class TestcontainersBroker:
    """Kafka in a Docker container through testcontainers, for machines that have Docker
    and prefer it to the jar cache. testcontainers is imported only here, so the project
    does not depend on it."""

    __test__ = False  # A class named Test* that pytest must not try to collect.

    def __init__(self, image: str | None = None) -> None:
        self._image = image or os.environ.get("KAFKA_IMAGE", DEFAULT_TESTCONTAINERS_IMAGE)
        self._container: Any = None

    def start(self) -> str:
        if self._container is not None:
            return str(self._container.get_bootstrap_server())
        try:
            module = importlib.import_module("testcontainers.kafka")
        except ImportError as exc:
            raise BrokerError(
                "KAFKA_PROVIDER=testcontainers needs the testcontainers package "
                "(pip install 'testcontainers[kafka]') and a Docker engine; "
                "unset KAFKA_PROVIDER to use the local jar broker instead"
            ) from exc
        container = module.KafkaContainer(self._image)
        if hasattr(container, "with_kraft"):
            container = container.with_kraft()
        # The same broker-wide behaviour as deploy/local/kafka.sh.
        for key, value in {
            "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
            "KAFKA_NUM_PARTITIONS": "4",
            "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        }.items():
            container = container.with_env(key, value)
        container.start()
        self._container = container
        return str(container.get_bootstrap_server())

    def stop(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            container.stop()


def provider_from_env(environ: Mapping[str, str] | None = None) -> BrokerProvider:
    """``KAFKA_BOOTSTRAP`` set: that broker. ``KAFKA_PROVIDER=testcontainers``: Docker.
    Otherwise (or ``KAFKA_PROVIDER=local``): a broker from the jar cache."""
    env = os.environ if environ is None else environ
    bootstrap = env.get("KAFKA_BOOTSTRAP", "").strip()
    if bootstrap:
        return ExternalBroker(bootstrap)
    choice = env.get("KAFKA_PROVIDER", "").strip().lower()
    if choice == "testcontainers":
        return TestcontainersBroker(env.get("KAFKA_IMAGE") or None)
    if choice in ("", "local", "jar"):
        return LocalJarBroker()
    raise BrokerError(
        f"KAFKA_PROVIDER={choice!r} is not known: use 'local' (default) or 'testcontainers', "
        "or set KAFKA_BOOTSTRAP to use a running broker"
    )
