"""Apache Kafka (KRaft, one node) from the Maven-fetched jars, as a child process.

It follows the steps of ``deploy/local/kafka.sh up`` on free ports and in a temporary data
dir, so it never clashes with the broker of ``make kafka-up``. Jars come from
``kafka.sh fetch``, the one place that knows about Maven.
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .base import BrokerError, free_ports, wait_until_answers
from .process import run_command, wait_or_kill

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO_ROOT / "deploy" / "local" / "kafka.sh"


def java_of(env: Mapping[str, str]) -> str:
    """The JVM that runs the broker: ``$JAVA_HOME/bin/java``, as Maven and ``kafka.sh`` pick
    it (make sets JAVA_HOME to Debian's OpenJDK 17 of system.lock), else ``java`` on PATH."""
    home = env.get("JAVA_HOME")
    return str(Path(home) / "bin" / "java") if home else "java"


def random_cluster_id() -> str:
    """A KRaft cluster id in the format of ``kafka.tools.StorageTool random-uuid``.

    Kafka's Uuid is a random UUID in unpadded URL-safe base64; Kafka never hands out ids
    that start with '-' (they read like command-line flags). Making it here saves one JVM
    start per broker.
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
    """Apache Kafka from the Maven-fetched jars, as a child process of this one.

    It follows the steps of ``deploy/local/kafka.sh up`` but owns its process directly
    (no pid file, no detaching) so `stop` can always reap it, and it uses a temporary
    data dir and free ports so it never meets the developer's ``make kafka-up`` broker.
    Jars come from ``kafka.sh fetch``, the one place that knows about Maven.
    """

    def __init__(
        self,
        *,
        kafka_sh: Path = KAFKA_SH,
        java: str | None = None,
        start_timeout: float = 60.0,
        stop_timeout: float = 30.0,
        attempts: int = 3,
    ) -> None:
        self._kafka_sh = kafka_sh
        self._java = java or java_of(os.environ)
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
        out = run_command(
            ["bash", str(self._kafka_sh), "fetch"], f"{self._kafka_sh} fetch", error=BrokerError
        )
        lib = Path(out.strip().splitlines()[-1])
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
        # Registered before the JVM starts: a session that dies without running its
        # finalizers still does not leave a broker behind.
        atexit.register(self.stop)
        port, controller_port = free_ports(2)
        base = self._write_config(data_dir, port, controller_port, lib)
        self._format_storage(base, data_dir)
        self._argv = [*base, "kafka.Kafka", str(data_dir / "server.properties")]
        self._launch()
        bootstrap = f"127.0.0.1:{port}"
        self._await_first_answer(bootstrap)
        self._bootstrap = bootstrap
        return bootstrap

    def _write_config(
        self, data_dir: Path, port: int, controller_port: int, lib: Path
    ) -> list[str]:
        """The broker's config and logging under ``data_dir``; returns the JVM command line
        both the storage tool and the broker start with."""
        log_dir = data_dir / "log"
        log_dir.mkdir()
        (data_dir / "server.properties").write_text(
            self._properties(data_dir, port, controller_port)
        )
        log4j = data_dir / "log4j.properties"
        log4j.write_text(log4j_properties(log_dir / "server.log"))
        return [
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

    def _format_storage(self, base: list[str], data_dir: Path) -> None:
        """KRaft needs its storage formatted with a cluster id before the first start."""
        tool = [*base, "kafka.tools.StorageTool", "format", "-t", random_cluster_id()]
        run_command(
            [*tool, "-c", str(data_dir / "server.properties"), *self._format_args()],
            "formatting KRaft storage",
            error=lambda message: BrokerError(
                f"{message}\n{log_tail(data_dir / 'log' / 'server.log')}"
            ),
        )

    def _await_first_answer(self, bootstrap: str) -> None:
        proc = self._proc
        assert proc is not None and self._data_dir is not None
        alive = lambda: proc.poll() is None  # noqa: E731
        if wait_until_answers(bootstrap, self._start_timeout, alive, config=self._client()):
            return
        why = (
            f"exited with code {proc.returncode}"
            if proc.poll() is not None
            else f"did not answer within {self._start_timeout:g}s"
        )
        log_dir = self._data_dir / "log"
        raise BrokerError(
            f"Kafka broker on {bootstrap} {why}\n"
            f"{log_tail(log_dir / 'server.log', log_dir / 'console.out')}"
        )

    # Hooks for a variant (tests/support/kafka_secured.py): the config, format options and
    # client settings.
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
        wait_or_kill(proc, self._stop_timeout)

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
            wait_or_kill(proc, self._stop_timeout)
        if self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None
        self._bootstrap = None
        atexit.unregister(self.stop)
