"""A child process of the local stack: its log, its HTTP probes, and a clean stop; and
`run_command`, for a command that is run to its end.

Readiness is read from what the process shows (its ``/metrics`` and ``/readyz``), never
guessed with a fixed sleep: a loaded machine only makes the wait longer, not wrong.
"""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from prometheus_client.parser import text_string_to_metric_families

from ..stream.topics import StreamError


class StackError(StreamError):
    """A part of the local stack failed or never got ready; the message says which and shows
    its log."""


def run_command(
    argv: Sequence[str],
    what: str,
    *,
    error: Callable[[str], Exception] = StackError,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    keep: int = 4000,
) -> str:
    """Run ``argv`` to its end (no stdin, its output captured) and return its standard
    output. If it exits non-zero, or is still running after ``timeout`` seconds (then it is
    killed), raise ``error`` with a message that names ``what``, the exit code and the last
    ``keep`` characters of its standard output and error.
    """
    try:
        done = subprocess.run(
            list(argv),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise error(f"{what} did not finish within {timeout:g}s") from None
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-keep:]
        raise error(f"{what} failed (exit {done.returncode}):\n{output}")
    return done.stdout


def wait_or_kill(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """``proc``'s exit code once it has exited; SIGKILL if that takes over ``timeout``
    seconds."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return proc.returncode


@dataclass
class Scrape:
    """A process's metrics, each name summed over its label sets."""

    values: dict[str, float]

    def get(self, name: str) -> float:
        return self.values.get(name, 0.0)


def parse_metrics(text: str) -> Scrape:
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return Scrape(values)


class Process:
    """``argv`` started now, its output in ``log``; ``port`` is where it serves its probes.

    ``new_session``: the process leaves the terminal's process group, so a Ctrl-C reaches
    only us and we stop it in order.
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str],
        log: Path,
        port: int | None = None,
        cwd: Path | None = None,
        new_session: bool = False,
    ) -> None:
        self.name = name
        self.log = log
        self.port = port
        self._handle: IO[bytes] | None = log.open("wb")
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def check(self) -> None:
        """Raise `StackError` if the process has exited."""
        if not self.alive:
            self._close()  # nothing writes to the log any more
            raise StackError(
                f"the {self.name} exited with code {self.proc.returncode}:\n{self.tail()}"
            )

    def text(self) -> str:
        if self._handle is not None:
            self._handle.flush()
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def get(self, path: str) -> tuple[int, str]:
        """Status and body of ``GET path`` on the probe port; ``(0, "")`` while nothing
        serves there yet."""
        try:
            url = f"http://127.0.0.1:{self.port}{path}"
            with urllib.request.urlopen(url, timeout=2) as reply:
                return int(reply.status), reply.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def scrape(self) -> Scrape | None:
        """Its metrics, or None while it does not serve them."""
        status, text = self.get("/metrics")
        return parse_metrics(text) if status == 200 else None

    def wait_until(self, condition: Callable[[], bool], timeout: float, every: float = 0.2) -> None:
        """Poll ``condition`` until it holds; `StackError` if the process exits first or
        the deadline passes."""
        deadline = time.monotonic() + timeout
        while not condition():
            self.check()
            if time.monotonic() > deadline:
                raise StackError(
                    f"the {self.name} was not ready within {timeout:g}s:\n{self.tail()}"
                )
            time.sleep(every)

    def wait_serving(self, timeout: float = 120.0) -> None:
        """Until its probe port serves metrics: it has parsed its settings and is running."""
        self.wait_until(lambda: self.get("/metrics")[0] == 200, timeout)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, as at a planned stop; SIGKILL if it is not gone within ``timeout``.
        Returns its exit code."""
        self.terminate()
        return self.wait(timeout)

    def terminate(self) -> None:
        """SIGTERM without waiting, so that several processes can stop at once."""
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 60.0) -> int:
        """Its exit code once it has exited; SIGKILL if that takes over ``timeout``."""
        code = wait_or_kill(self.proc, timeout)
        self._close()
        return code

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush, no commit, as in a crash."""
        if self.alive:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self._close()

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
