"""One small HTTP server per process: ``/metrics``, ``/healthz`` (liveness), ``/readyz``.

- ``/healthz`` is 200 while the process's loop keeps calling :meth:`Health.beat`; once the
  last beat is older than ``stale_after`` seconds it is 503, and an orchestrator restarts
  the process (a loop that stopped turning does no work but holds its partitions).
- ``/readyz`` is 200 only when the loop last reported itself ready (partitions assigned and
  their state recovered); otherwise 503 with a short JSON reason.
- ``/metrics`` is the process's own Prometheus registry.

The server runs in a daemon thread and only reads what the loop last wrote (a float and a
string), so it never touches the loop's state while the loop changes it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from ..codec import encode

METRICS_PATH = "/metrics"
LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
PATHS = (METRICS_PATH, LIVENESS_PATH, READINESS_PATH)

HEARTBEAT_EVERY = 1.0
"""Seconds between a worker's heartbeats (a Faust timer on its event loop)."""
STALE_AFTER = 30.0
"""A loop silent this long is not alive: a batch of a thousand CDRs takes well under a
second, so only a stuck loop stays silent for half a minute."""
STARTING = "starting"


class Health:
    """What the loop last said about itself: when it last beat, and why it is not ready."""

    def __init__(
        self, stale_after: float = STALE_AFTER, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stale_after = stale_after
        self._clock = clock
        # The start counts as a beat: a process is alive while it starts up.
        self._beat = clock()
        self._not_ready: str | None = STARTING
        # Outages under way, by component (outage.py); replaced, never mutated, so the
        # HTTP thread always reads a whole mapping.
        self._outages: dict[str, str] = {}

    def beat(self) -> None:
        """The loop is turning (call it from the loop, at least every few seconds)."""
        self._beat = self._clock()

    def ready(self, reason: str | None) -> None:
        """``None``: ready; otherwise the short reason it is not."""
        self._not_ready = reason

    def not_ready_for(self, component: str, reason: str | None) -> None:
        """A component's outage (``None``: it is over). While any is under way the process
        is not ready, whatever the loop last said with :meth:`ready`."""
        outages = {k: v for k, v in self._outages.items() if k != component}
        if reason is not None:
            outages[component] = reason
        self._outages = outages

    def liveness(self) -> tuple[bool, dict[str, object]]:
        age = self._clock() - self._beat
        alive = age <= self.stale_after
        body: dict[str, object] = {"alive": alive, "last_beat_seconds_ago": round(age, 3)}
        if not alive:
            body["reason"] = f"no heartbeat for {age:.0f}s (limit {self.stale_after:.0f}s)"
        return alive, body

    def readiness(self) -> tuple[bool, dict[str, object]]:
        outages = self._outages
        reason = "; ".join(outages[k] for k in sorted(outages)) if outages else self._not_ready
        if reason is None:
            return True, {"ready": True}
        return False, {"ready": False, "reason": reason}


def worker_readiness(
    rebalancing: bool, assigned: Iterable[int], recovered: Callable[[int], bool]
) -> str | None:
    """Why a worker is not ready (``None`` when it is): it must own wallet partitions and
    have rebuilt every one of them."""
    if rebalancing:
        return "rebalancing: partitions are being assigned and tables restored"
    partitions = sorted(set(assigned))
    if not partitions:
        return "no wallet partitions assigned"
    pending = [p for p in partitions if not recovered(p)]
    if pending:
        return f"recovering wallet partitions {', '.join(map(str, pending))}"
    return None


class HealthServer:
    """The HTTP server of one process; ``port`` is the bound port (useful with port 0)."""

    def __init__(
        self, port: int, registry: CollectorRegistry, health: Health, host: str = "0.0.0.0"
    ) -> None:
        self.health = health
        self.registry = registry
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health-http", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve(
    port: int, registry: CollectorRegistry, health: Health, host: str = "0.0.0.0"
) -> HealthServer:
    return HealthServer(port, registry, health, host)


def _handler(server: HealthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == METRICS_PATH:
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._reply(200, encoder(server.registry), content_type)
            elif path == LIVENESS_PATH:
                self._json(*server.health.liveness())
            elif path == READINESS_PATH:
                self._json(*server.health.readiness())
            else:
                self._json(False, {"error": f"not found; try {', '.join(PATHS)}"}, 404)

        def _json(self, ok: bool, body: dict[str, object], failure: int = 503) -> None:
            self._reply(200 if ok else failure, encode(body) + b"\n", "application/json")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Probes arrive every few seconds: logging each would drown the worker's log."""

    return Handler
