"""A child process of the local stack: exit seen, log read, readiness waited on, stopped; a
command run to its end: its output, or an error that shows why it failed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.local import BrokerError, Process, StackError, free_ports, run_command
from engine.local.process import parse_metrics, wait_or_kill

SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'rating_x_total{a="1"} 2.0\\nrating_x_total{a="2"} 3.0\\n'
        self.send_response(200 if self.path == "/metrics" else 503)
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
print("serving", flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def start(tmp_path: Path, code: str, *args: str, port: int | None = None) -> Process:
    argv = [sys.executable, "-c", code, *args]
    return Process("probe", argv, env=dict(os.environ), log=tmp_path / "p.log", port=port)


def test_metrics_are_summed_over_their_labels() -> None:
    scrape = parse_metrics('# TYPE rating_x counter\nrating_x_total{a="1"} 2\nrating_x_total 3\n')
    assert scrape.get("rating_x_total") == 5.0 and scrape.get("absent") == 0.0


def test_a_serving_process_is_waited_for_read_and_stopped(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    process = start(tmp_path, SERVER, str(port), port=port)
    try:
        process.wait_serving(timeout=60)
        scrape = process.scrape()
        assert scrape is not None and scrape.get("rating_x_total") == 5.0
        assert process.get("/readyz")[0] == 503
        assert "serving" in process.tail()
    finally:
        code = process.stop(timeout=30)
    assert code != 0 and not process.alive  # SIGTERM ends it
    assert process.get("/metrics") == (0, "")


def test_an_exited_process_is_reported_with_its_log(tmp_path: Path) -> None:
    process = start(tmp_path, "print('no broker'); raise SystemExit(3)")
    with pytest.raises(StackError, match=r"(?s)the probe exited with code 3:.*no broker"):
        process.wait_until(lambda: False, timeout=60, every=0.05)


def test_waiting_has_a_deadline(tmp_path: Path) -> None:
    process = start(tmp_path, "import time; time.sleep(60)")
    try:
        with pytest.raises(StackError, match=r"not ready within 0\.2s"):
            process.wait_until(lambda: False, timeout=0.2, every=0.05)
    finally:
        process.kill()
    assert process.proc.returncode == -9


def test_a_command_run_to_its_end_gives_its_output() -> None:
    code = "import sys; print('lib'); print('noise', file=sys.stderr)"
    assert run_command([sys.executable, "-c", code], "probe") == "lib\n"


def test_a_failed_command_names_itself_its_exit_code_and_the_end_of_its_output() -> None:
    code = "import sys; print('x' * 50 + 'out'); print('the reason', file=sys.stderr); exit(4)"
    with pytest.raises(StackError) as caught:
        run_command([sys.executable, "-c", code], "probing", keep=30)
    message = str(caught.value)
    assert message.startswith("probing failed (exit 4):\n")
    assert message.endswith("out\nthe reason\n") and "x" * 20 not in message


def test_a_failed_command_raises_the_error_its_caller_asks_for() -> None:
    argv = [sys.executable, "-c", "exit(2)"]
    with pytest.raises(BrokerError, match=r"(?s)probe failed \(exit 2\):.*see the log"):
        run_command(argv, "probe", error=lambda message: BrokerError(f"{message}\nsee the log"))


def test_a_command_that_outlives_its_timeout_is_stopped_and_reported() -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    with pytest.raises(StackError, match=r"probe did not finish within 0\.5s"):
        run_command(argv, "probe", timeout=0.5)


def test_a_process_that_ignores_sigterm_is_killed_once_its_time_is_up() -> None:
    code = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    code += "print('ready', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    proc.terminate()
    assert wait_or_kill(proc, timeout=0.5) == -9
    proc.stdout.close()
